/* The DeepStream stand-in: small GStreamer elements that model the runtime semantics the
 * adapter depends on (legacy nvstreammux batching, nvtracker IDs and resets, a decoder
 * whose surfaces go bad or block when it stops). Test code only: see README.md. */
#ifndef DS_STANDIN_H
#define DS_STANDIN_H

#include <gst/gst.h>

#include "gst-nvevent.h"
#include "gstnvdsmeta.h"

G_BEGIN_DECLS

/* Registers dsstandinsurfaces, dsstandinmux, dsstandintracker, dsstandinsink. */
void ds_standin_register_elements (void);

/* Batch meta (the stand-in muxer makes it, the tracker fills in objects). */
NvDsBatchMeta *ds_standin_batch_meta_add (GstBuffer *buffer);
NvDsFrameMeta *ds_standin_frame_meta_new (void);
NvDsObjectMeta *ds_standin_object_meta_new (void);

/* A decoder surface: attached by dsstandinsurfaces to each buffer it hands out. TRUE when
 * `buffer` carries a surface its decoder has already taken back (a read of freed memory
 * on a GPU). */
gboolean ds_standin_surface_is_poisoned (GstBuffer *buffer);

/* Process-wide counters the elements update and the app reports at exit. */
typedef struct {
  gint poisoned_reads;        /* frames read by the muxer or tracker after their surface went bad */
  gint surfaces_poisoned;     /* surfaces a stopping decoder took back while still in use */
  gint64 surface_wait_max_ns; /* longest wait of a stopping decoder for its surfaces */
  gint flushes_forwarded;     /* per-pad flushes the muxer passed downstream */
  gint batches;
  gint64 frames;
} DsStandinStats;

extern DsStandinStats ds_standin_stats; /* gint fields: atomic access */

void ds_standin_stats_note_wait (gint64 ns);
void ds_standin_stats_add_frames (gint64 n);
DsStandinStats ds_standin_stats_get (void);

G_END_DECLS

#endif
