/* The stand-in's switches: the [standin] group of the deepstream-app config named by
 * DS_STANDIN_CONFIG (the stand-in app sets it to its own -c; for the real deepstream-app
 * it is set by hand, README.md). Each element takes its defaults from here, so the real
 * app, which only sets NVIDIA's properties, runs the same model. No file or no group:
 * the defaults, pessimistic where NVIDIA's behaviour is unknown. Test code. */
#ifndef DS_STANDIN_OPTIONS_H
#define DS_STANDIN_OPTIONS_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  /* nvstreammux (the legacy one) */
  gboolean eos_needs_flush;   /* a pad that saw EOS takes data again only after FLUSH_STOP */
  guint frames_per_source;    /* 0: batch-size ÷ sources in the batch (documented), N: at most N */
  gboolean forward_flush;     /* a pad's flush goes downstream, flushing every source */
  gboolean reset_in_order;    /* a stream reset stays behind the pad's queued frames */
  guint max_queue;            /* frames a pad may have waiting (at least its share of a batch) */
  guint batch_copy_ms;        /* time spent on each batch (the copy into the batch surface) */
  /* nvv4l2decoder */
  guint decoder_create_ms;    /* cost of a decoder session, paid on every file */
  gboolean poison;            /* stopping takes surfaces back at once instead of waiting */
  guint max_surfaces;
  guint block_timeout_ms;
  /* the stand-in app's sink */
  guint hold_ms;
  guint wedge_after_frames;   /* 0: never; else the sink keeps every batch from then on */
} DsStandinOptions;

/* Loaded once; an unknown key or a bad value in [standin] is fatal (a typo would
 * silently test the wrong model). */
const DsStandinOptions *ds_standin_options (void);

G_END_DECLS

#endif
