/* Stand-in for the SDK's latency measurement calls (test code, see ../README.md). */
#ifndef DS_STANDIN_NVDS_LATENCY_META_H
#define DS_STANDIN_NVDS_LATENCY_META_H

#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct {
  guint source_id;
  guint frame_num;
  gdouble comp_in_timestamp;
  gdouble latency;
} NvDsFrameLatencyInfo;

guint nvds_measure_buffer_latency (GstBuffer *buf, NvDsFrameLatencyInfo *latency_info);
gboolean nvds_get_enable_latency_measurement (void);

G_END_DECLS

#endif
