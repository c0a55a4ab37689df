/* Our own implementations of the closed DeepStream SDK calls that deepstream-app 7.1
 * links against and that ../sdk/ds-standin-meta.c does not already provide (batch meta,
 * display meta, stream events). With them and the stand-in plugin, the real patched app
 * links and runs without DeepStream (README.md, "The real deepstream-app on the
 * stand-in"). Each does what the shipped configs need and no more: the features they
 * belong to (smart record, message broker, object image encoding, latency measurement)
 * are off in those configs, and asking for one says that the stand-in has none.
 * Test code only; written from the SDK's declarations, nothing of NVIDIA's copied. */
#include <stdio.h>
#include <string.h>

#include <gst/gst.h>

#include "cuda_runtime_api.h"
#include "gst-nvdscustommessage.h"
#include "gst-nvdssr.h"
#include "gstnvdsmeta.h"
#include "nvbufsurface.h"
#include "nvds_latency_meta.h"
#include "nvds_obj_encode.h" /* after nvbufsurface.h, as in the SDK */
#include "nvds_version.h"
#include "nvdsgstutils.h"
#include "nvmsgbroker.h"

#define NOT_HERE(what) g_warning ("DeepStream stand-in: %s is not part of the stand-in", what)

/* ---------- CUDA runtime (deepstream_source_bin.c: decodebin_child_added) ---------- */

cudaError_t
cudaGetDevice (int *device)
{
  *device = 0;
  return cudaSuccess;
}

/* A discrete GPU, as on the user's hosts: the source bin then sets the decoder's
 * extract-sei-type5-data, which an integrated one (Jetson) has not. */
cudaError_t
cudaGetDeviceProperties (struct cudaDeviceProp *prop, int device)
{
  if (device != 0)
    return cudaErrorInvalidDevice;
  memset (prop, 0, sizeof (*prop));
  g_strlcpy (prop->name, "DeepStream stand-in (no GPU)", sizeof (prop->name));
  prop->major = 8;
  prop->integrated = 0;
  return cudaSuccess;
}

/* ---------- custom bus messages: the stand-in posts none ---------- */

gboolean
gst_nvmessage_is_stream_add (GstMessage *message)
{
  (void) message;
  return FALSE;
}

gboolean
gst_nvmessage_parse_stream_add (GstMessage *message, NvDsSensorInfo *sensor_info)
{
  (void) message;
  (void) sensor_info;
  return FALSE;
}

gboolean
gst_nvmessage_is_stream_remove (GstMessage *message)
{
  (void) message;
  return FALSE;
}

gboolean
gst_nvmessage_parse_stream_remove (GstMessage *message, NvDsSensorInfo *sensor_info)
{
  (void) message;
  (void) sensor_info;
  return FALSE;
}

gboolean
gst_nvmessage_parse_fps_stream_add (GstMessage *message, NvDsFPSSensorInfo *sensor_info)
{
  (void) message;
  (void) sensor_info;
  return FALSE;
}

gboolean
gst_nvmessage_parse_fps_stream_remove (GstMessage *message, NvDsFPSSensorInfo *sensor_info)
{
  (void) message;
  (void) sensor_info;
  return FALSE;
}

gboolean
gst_nvmessage_is_force_pipeline_eos (GstMessage *message)
{
  (void) message;
  return FALSE;
}

gboolean
gst_nvmessage_parse_force_pipeline_eos (GstMessage *message, gboolean *force_eos)
{
  (void) message;
  *force_eos = FALSE;
  return FALSE;
}

gboolean
gst_nvmessage_is_reconnect_attempt_exceeded (GstMessage *message)
{
  (void) message;
  return FALSE;
}

gboolean
gst_nvmessage_parse_reconnect_attempt_exceeded (GstMessage *message,
    NvDsRtspAttemptsInfo *rtsp_info)
{
  (void) message;
  (void) rtsp_info;
  return FALSE;
}

/* ---------- RTSP sources ---------- */

void
configure_source_for_ntp_sync (GstElement *src_elem)
{
  (void) src_elem; /* NTP timestamps only matter for multi-camera sync: none here */
}

/* ---------- features the shipped configs leave off ---------- */

NvDsSRStatus
NvDsSRCreate (NvDsSRContext **ctx, NvDsSRInitParams *params)
{
  (void) params;
  NOT_HERE ("smart record");
  *ctx = NULL;
  return NVDSSR_STATUS_ERROR;
}

NvDsSRStatus
NvDsSRStart (NvDsSRContext *ctx, NvDsSRSessionId *sessionId, guint startTime,
    guint duration, gpointer userData)
{
  (void) ctx;
  (void) sessionId;
  (void) startTime;
  (void) duration;
  (void) userData;
  return NVDSSR_STATUS_INVALID_OP;
}

NvDsSRStatus
NvDsSRStop (NvDsSRContext *ctx, NvDsSRSessionId sessionId)
{
  (void) ctx;
  (void) sessionId;
  return NVDSSR_STATUS_INVALID_OP;
}

NvDsSRStatus
NvDsSRDestroy (NvDsSRContext *ctx)
{
  (void) ctx;
  return NVDSSR_STATUS_OK;
}

NvMsgBrokerClientHandle
nv_msgbroker_connect (char *broker_conn_str, char *broker_proto_lib,
    nv_msgbroker_connect_cb_t connect_cb, char *cfg)
{
  (void) broker_conn_str;
  (void) broker_proto_lib;
  (void) connect_cb;
  (void) cfg;
  NOT_HERE ("the message broker");
  return NULL;
}

NvMsgBrokerErrorType
nv_msgbroker_subscribe (NvMsgBrokerClientHandle h_ptr, char **topics, int num_topics,
    nv_msgbroker_subscribe_cb_t cb, void *user_ctx)
{
  (void) h_ptr;
  (void) topics;
  (void) num_topics;
  (void) cb;
  (void) user_ctx;
  return NV_MSGBROKER_API_ERR;
}

NvMsgBrokerErrorType
nv_msgbroker_disconnect (NvMsgBrokerClientHandle h_ptr)
{
  (void) h_ptr;
  return NV_MSGBROKER_API_ERR;
}

/* The mirror of the 7.1 app we build against creates a context whenever [primary-gie]
 * is on and fails without one (its own JPEG saving, not NVIDIA's): a dummy handle that
 * encodes nothing. */
NvDsObjEncCtxHandle
nvds_obj_enc_create_context (int gpu_id)
{
  static gint dummy;

  (void) gpu_id;
  return (NvDsObjEncCtxHandle) (gpointer) &dummy;
}

bool
nvds_obj_enc_process (NvDsObjEncCtxHandle ctx, NvDsObjEncUsrArgs *args,
    NvBufSurface *surface, NvDsObjectMeta *object, NvDsFrameMeta *frame)
{
  (void) ctx;
  (void) args;
  (void) surface;
  (void) object;
  (void) frame;
  return false;
}

void
nvds_obj_enc_finish (NvDsObjEncCtxHandle ctx)
{
  (void) ctx;
}

/* NVDS_ENABLE_LATENCY_MEASUREMENT is not honoured: the stand-in has no latency meta. */
gboolean
nvds_get_enable_latency_measurement (void)
{
  return FALSE;
}

guint
nvds_measure_buffer_latency (GstBuffer *buf, NvDsFrameLatencyInfo *latency_info)
{
  (void) buf;
  (void) latency_info;
  return 0;
}

/* ---------- versions (deepstream-app -v, --version-all) ---------- */

void
nvds_version_print (void)
{
  printf ("DeepStream SDK stand-in for %d.%d (no DeepStream, no GPU)\n", NVDS_VERSION_MAJOR,
      NVDS_VERSION_MINOR);
}

void
nvds_dependencies_version_print (void)
{
  gchar *gst = gst_version_string ();

  printf ("%s; no CUDA, cuDNN, TensorRT (the DeepStream stand-in)\n", gst);
  g_free (gst);
}
