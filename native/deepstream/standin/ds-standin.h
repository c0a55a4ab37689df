/* The DeepStream stand-in: what its SDK library (sdk/: batch meta, custom events, the
 * closed SDK calls deepstream-app makes, counters) offers the stand-in plugin (plugin/:
 * elements under NVIDIA's names) and the stand-in app. Test code only: see README.md.
 *
 * Everything here builds against our own SDK declarations (include/) in CI and against
 * NVIDIA's headers in the by-hand build of the real deepstream-app (README.md): only the
 * SDK names both have are used. */
#ifndef DS_STANDIN_H
#define DS_STANDIN_H

#include <gst/gst.h>

#include "gst-nvevent.h"
#include "gstnvdsmeta.h"

G_BEGIN_DECLS

/* Batch meta: the stand-in muxer attaches one to each batch, the tracker adds objects. */
NvDsBatchMeta *ds_standin_batch_meta_add (GstBuffer *buffer);
NvDsFrameMeta *ds_standin_frame_meta_new (NvDsBatchMeta *batch);
NvDsObjectMeta *ds_standin_object_meta_new (void);
/* The muxer's input buffer a frame came from: the batch holds it (no copy) until the
 * batch is released downstream, as the legacy muxer holds a decoder's surfaces. */
void ds_standin_frame_hold_input (NvDsBatchMeta *batch, NvDsFrameMeta *frame,
    GstBuffer *input);
GstBuffer *ds_standin_frame_input (NvDsBatchMeta *batch, NvDsFrameMeta *frame);

/* Process-wide counters the elements update and the app reports at exit. */
typedef struct {
  gint poisoned_reads;        /* frames read by the muxer or tracker after their surface went bad */
  gint surfaces_poisoned;     /* surfaces a stopping decoder took back while still in use */
  gint64 surface_wait_max_ns; /* longest wait of a stopping decoder for its surfaces */
  gint flushes_forwarded;     /* per-pad flushes the muxer passed downstream */
  gint dropped_at_eos;        /* buffers a muxer pad refused while at EOS, not yet flushed */
  gint resets_flushed;        /* stream resets a per-pad flush dropped from the pad's queue */
  gint batches;
  gint timeout_pushes;        /* batches pushed short because batched-push-timeout passed */
  gint64 frames;
  gint decoder_starts;        /* decoder sessions set up (one per file) */
} DsStandinStats;

extern DsStandinStats ds_standin_stats; /* gint fields: atomic access */

void ds_standin_stats_note_wait (gint64 ns);
void ds_standin_stats_add_frames (gint64 n);
DsStandinStats ds_standin_stats_get (void);

G_END_DECLS

#endif
