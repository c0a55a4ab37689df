/* Stand-in for the DeepStream SDK's batch metadata: only the fields ds-app-adapter.c
 * reads, with the SDK's names (test code, see ../README.md). The stand-in muxer attaches
 * one NvDsBatchMeta per batch; the stand-in tracker adds the objects. */
#ifndef DS_STANDIN_GSTNVDSMETA_H
#define DS_STANDIN_GSTNVDSMETA_H

#include <gst/gst.h>

G_BEGIN_DECLS

typedef GList NvDsMetaList;

#define UNTRACKED_OBJECT_ID ((guint64) -1)
#define MAX_LABEL_SIZE 128

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
  gint class_id;
  guint64 object_id;
  gfloat confidence;
  NvOSD_RectParams rect_params;
  NvDsComp_BboxInfo tracker_bbox_info;
  gchar obj_label[MAX_LABEL_SIZE];
} NvDsObjectMeta;

typedef struct {
  guint pad_index;
  guint source_id;
  gint frame_num;
  guint64 buf_pts;
  NvDsMetaList *obj_meta_list;
  /* stand-in only: the muxer's input buffer this frame came from (held by the batch) */
  GstBuffer *standin_input;
} NvDsFrameMeta;

typedef struct {
  guint num_frames_in_batch;
  NvDsMetaList *frame_meta_list;
} NvDsBatchMeta;

NvDsBatchMeta *gst_buffer_get_nvds_batch_meta (GstBuffer *buffer);

G_END_DECLS

#endif
