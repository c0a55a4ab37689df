/* ds-slot-core: what every engine's slots share, free of GStreamer: the slot numbers,
 * the one error domain of slot refusals and failures, and the calls a streaming thread
 * hands to the main loop (DsSlotCall), tagged with the slot's generation (which changes
 * whenever a file begins or ends) so that work for an earlier file can be dropped there.
 *
 * Beside it: the per-file output (ds-slot-output.h), input path checks
 * (ds-path-check.h), live sources (ds-live.h) and the GStreamer side (ds-slot-gst.h). */
#ifndef DS_SLOT_CORE_H
#define DS_SLOT_CORE_H

#include <glib.h>

G_BEGIN_DECLS

/* Index of no slot (engine-wide work, an element outside every slot). */
#define DS_SLOT_NONE G_MAXUINT

#define DS_SLOT_ERROR (ds_slot_error_quark ())
GQuark ds_slot_error_quark (void);

typedef enum {
  DS_SLOT_ERROR_BUSY,     /* `slot 0 busy (file 12)` (ds-slot-book.h) */
  DS_SLOT_ERROR_OUTPUT,   /* `cannot open output …` / `cannot write output …` */
  DS_SLOT_ERROR_PIPELINE, /* the engine cannot build or start its pipeline */
} DsSlotError;

/* The text a slot fails or loses its stream with when no frame came for `ms`:
 * `no video frame within <ms> ms` before the first frame (of the file, or of the current
 * connection attempt of a live source), else `stalled: no video frame for <ms> ms`. */
gchar *ds_slot_stall_text (gboolean no_frame_yet, gint64 ms);

typedef struct _DsSlotCall DsSlotCall;
typedef void (*DsSlotCallFunc) (const DsSlotCall *call);

struct _DsSlotCall {
  gpointer owner;      /* the engine */
  gpointer slot;       /* the engine's slot; NULL for engine-wide work */
  guint index;         /* the slot number, DS_SLOT_NONE for engine-wide work */
  guint64 generation;  /* the slot's generation when queued (read under its lock) */
  gint kind;           /* engine-defined */
  gint64 mono_ns;
  const gchar *text;   /* NULL = none; ds_slot_call_queue copies it */
};

/* Runs func (call) on context's main loop (NULL: the global default), always later, never
 * inline even on the main thread: a state change made by a request may post an error at
 * once, and the request's reply must go out first. `call` is copied (text too); the copy
 * is freed after func returns. Safe from any thread. */
void ds_slot_call_queue (GMainContext *context, DsSlotCallFunc func, const DsSlotCall *call);

/* A set of slot states (an engine's state or phase enum) for ds_slot_call_is_current. */
#define DS_SLOT_STATES(s) (1u << (s))

/* TRUE when the call is still about the slot's current file: generation and state are the
 * slot's now (read under its lock) and state is one of `states`. */
gboolean ds_slot_call_is_current (const DsSlotCall *call, guint64 generation, guint state,
    guint states);

G_END_DECLS

#endif /* DS_SLOT_CORE_H */
