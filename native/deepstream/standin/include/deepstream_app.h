/* Stand-in for deepstream-app's application context: only the types and fields that
 * ds-app-adapter.c uses, with the 7.1 app's names, so the adapter compiles unchanged
 * against the stand-in (test code, see ../README.md). Declared here from what the
 * adapter reads; nothing of NVIDIA's is copied. */
#ifndef DS_STANDIN_DEEPSTREAM_APP_H
#define DS_STANDIN_DEEPSTREAM_APP_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define MAX_SOURCE_BINS 64

typedef enum {
  NV_DS_SOURCE_CAMERA_V4L2 = 1,
  NV_DS_SOURCE_URI,
  NV_DS_SOURCE_URI_MULTIPLE,
  NV_DS_SOURCE_RTSP,
} NvDsSourceType;

typedef struct {
  NvDsSourceType type;
  gboolean enable;
  gboolean loop;
  guint gpu_id;
  gchar *uri;
} NvDsSourceConfig;

typedef struct {
  GstElement *bin;
} NvDsDewarperBin;

typedef struct {
  GstElement *bin;
  GstElement *src_elem;     /* uridecodebin */
  GstElement *cap_filter1;  /* last element before the ghost pad `src` */
  NvDsSourceConfig *config;
  NvDsDewarperBin dewarper_bin;
  /* stand-in only */
  GstElement *tee, *queue, *conv, *fakequeue, *fakesink;
} NvDsSrcBin;

typedef struct {
  GstElement *bin;
  GstElement *streammux;
  guint num_bins;
  NvDsSrcBin sub_bins[MAX_SOURCE_BINS];
} NvDsSrcParentBin;

typedef struct {
  GstElement *bin;
} NvDsGieBin;

typedef struct {
  GstElement *bin;
  GstElement *tracker;
} NvDsTrackerBin;

typedef struct {
  NvDsGieBin primary_gie_bin;
  NvDsTrackerBin tracker_bin;
} NvDsCommonElements;

typedef struct {
  GstElement *pipeline;
  NvDsSrcParentBin multi_src_bin;
  NvDsCommonElements common_elements;
  GstElement *sink;
} NvDsPipeline;

typedef struct {
  guint gpu_id;
} NvDsStreammuxConfig;

typedef struct {
  gboolean enable;
  guint gpu_id;
} NvDsGieConfig;

typedef struct {
  gboolean enable;
  guint gpu_id;
  guint tracking_id_reset_mode;
} NvDsTrackerConfig;

typedef struct {
  guint pipeline_recreate_sec;
  gint file_loop;
  gboolean use_nvmultiurisrcbin;
  guint num_source_sub_bins;
  NvDsSourceConfig multi_source_config[MAX_SOURCE_BINS];
  NvDsStreammuxConfig streammux_config;
  NvDsGieConfig primary_gie_config;
  NvDsTrackerConfig tracker_config;
} NvDsConfig;

typedef struct {
  gboolean quit;
  gint return_value;
  NvDsConfig config;
  NvDsPipeline pipeline;
} AppCtx;

G_END_DECLS

#endif
