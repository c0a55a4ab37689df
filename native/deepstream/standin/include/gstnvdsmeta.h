/* Stand-in for the DeepStream SDK's batch metadata: only the fields the adapter, the
 * stand-in elements and ../sdk read or write, with the SDK's names (test code, see
 * ../README.md). Code written against these names also builds against the SDK's own
 * headers (the by-hand build of the real deepstream-app, ../README.md). The stand-in
 * muxer attaches one NvDsBatchMeta per batch; the stand-in tracker adds the objects. */
#ifndef DS_STANDIN_GSTNVDSMETA_H
#define DS_STANDIN_GSTNVDSMETA_H

#include <gst/gst.h>

G_BEGIN_DECLS

typedef GList NvDsMetaList;
typedef GList NvDsFrameMetaList;

#define UNTRACKED_OBJECT_ID ((guint64) -1)
#define MAX_LABEL_SIZE 128
#define MAX_ELEMENTS_IN_DISPLAY_META 16

typedef struct {
  gfloat left, top, width, height;
} NvBbox_Coords;

typedef struct {
  NvBbox_Coords org_bbox_coords;
} NvDsComp_BboxInfo;

typedef struct {
  gfloat left, top, width, height;
} NvOSD_RectParams;

typedef struct {
  gchar *display_text;    /* g_malloc'ed; freed with the meta */
} NvOSD_TextParams;

typedef struct {
  gint unique_component_id;
  gint class_id;
  guint64 object_id;
  gfloat confidence;
  NvOSD_RectParams rect_params;
  NvOSD_TextParams text_params;
  NvDsComp_BboxInfo tracker_bbox_info;
  gchar obj_label[MAX_LABEL_SIZE];
} NvDsObjectMeta;

typedef struct {
  guint num_labels;
  NvOSD_TextParams text_params[MAX_ELEMENTS_IN_DISPLAY_META];
} NvDsDisplayMeta;

typedef struct {
  guint pad_index;
  guint source_id;
  gint frame_num;
  guint64 buf_pts;
  NvDsMetaList *obj_meta_list;
  NvDsMetaList *display_meta_list;
} NvDsFrameMeta;

typedef struct {
  guint num_frames_in_batch;
  NvDsFrameMetaList *frame_meta_list;
} NvDsBatchMeta;

NvDsBatchMeta *gst_buffer_get_nvds_batch_meta (GstBuffer *buffer);
NvDsDisplayMeta *nvds_acquire_display_meta_from_pool (NvDsBatchMeta *batch_meta);
void nvds_add_display_meta_to_frame (NvDsFrameMeta *frame_meta, NvDsDisplayMeta *display_meta);
NvDsFrameMeta *nvds_get_nth_frame_meta (NvDsFrameMetaList *frame_meta_list, guint index);

G_END_DECLS

#endif
