/* Stand-in for the SDK's custom bus messages (stream add/remove, forced EOS, RTSP
 * reconnects): opaque payloads (test code, see ../README.md). */
#ifndef DS_STANDIN_GST_NVDSCUSTOMMESSAGE_H
#define DS_STANDIN_GST_NVDSCUSTOMMESSAGE_H

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct _NvDsSensorInfo NvDsSensorInfo;
typedef struct _NvDsFPSSensorInfo NvDsFPSSensorInfo;
typedef struct _NvDsRtspAttemptsInfo NvDsRtspAttemptsInfo;

gboolean gst_nvmessage_is_stream_add (GstMessage *message);
gboolean gst_nvmessage_parse_stream_add (GstMessage *message, NvDsSensorInfo *sensor_info);
gboolean gst_nvmessage_is_stream_remove (GstMessage *message);
gboolean gst_nvmessage_parse_stream_remove (GstMessage *message, NvDsSensorInfo *sensor_info);
gboolean gst_nvmessage_parse_fps_stream_add (GstMessage *message,
    NvDsFPSSensorInfo *sensor_info);
gboolean gst_nvmessage_parse_fps_stream_remove (GstMessage *message,
    NvDsFPSSensorInfo *sensor_info);
gboolean gst_nvmessage_is_force_pipeline_eos (GstMessage *message);
gboolean gst_nvmessage_parse_force_pipeline_eos (GstMessage *message, gboolean *force_eos);
gboolean gst_nvmessage_is_reconnect_attempt_exceeded (GstMessage *message);
gboolean gst_nvmessage_parse_reconnect_attempt_exceeded (GstMessage *message,
    NvDsRtspAttemptsInfo *rtsp_info);

G_END_DECLS

#endif
