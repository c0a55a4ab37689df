/* DsSlotBook: the per-slot bookkeeping both engines keep alike, free of GStreamer.
 *
 * A slot plays one file at a time: idle → starting (play accepted) → playing (frames
 * counted) → idle again, through `draining` where the file's frames are still on their
 * way to the per-file output after its source ended (the DeepStream adapter: muxer and
 * tracker lie between the two; the gst engine writes each frame where it counts it and
 * never drains). The book counts the file's frames and the camera's (continuous across the
 * files of one camera, reset between cameras), keeps the last position, the file's
 * per-file output, the error it ended with, and answers `play` (busy), `stop`, `reset`
 * and `progress` in the same words for both.
 *
 * `generation` changes whenever a file begins or ends, so work queued from a streaming
 * thread for an earlier file can be recognised as stale (ds_slot_call_is_current). The
 * book does no locking: the caller serialises access. */
#ifndef DS_SLOT_BOOK_H
#define DS_SLOT_BOOK_H

#include <glib.h>

#include "ds-shim.h"
#include "ds-slot-core.h"
#include "ds-slot-output.h"

G_BEGIN_DECLS

typedef enum {
  DS_SLOT_PHASE_IDLE = 0,
  DS_SLOT_PHASE_STARTING, /* play accepted, no frame yet */
  DS_SLOT_PHASE_PLAYING,  /* frames counted */
  DS_SLOT_PHASE_DRAINING, /* the source ended; its frames are still on their way */
} DsSlotPhase;

/* The phases in which the source side counts frames (for ds_slot_call_is_current). */
#define DS_SLOT_PHASES_ACTIVE \
    (DS_SLOT_STATES (DS_SLOT_PHASE_STARTING) | DS_SLOT_STATES (DS_SLOT_PHASE_PLAYING))

typedef enum {
  DS_SLOT_FRAME_IGNORED = 0, /* no file to count it for (idle, draining) */
  DS_SLOT_FRAME_FIRST,       /* the file's first frame: file_started */
  DS_SLOT_FRAME_COUNTED,
} DsSlotFrame;

typedef struct {
  guint index;           /* the slot number, for messages */
  DsSlotPhase phase;
  gboolean has_file;
  gint64 file_id;
  guint64 generation;
  guint64 frames;        /* of the current (or last) file */
  guint64 camera_frames; /* since the last camera reset */
  gint64 position_ns;    /* the last frame's PTS from the file start, -1 = unknown */
  gint64 duration_ns;    /* -1 = unknown */
  gint64 first_mono_ns;  /* CLOCK_MONOTONIC of the file's first frame, -1 = none yet */
  gint64 last_mono_ns;   /* ... and of its last frame */
  gchar *end_error;      /* why the file ended, NULL = its EOS (draining) */
  DsSlotOutput out;      /* per-file output */
} DsSlotBook;

/* What a finished file reports: file_done, or file_error when error is set. */
typedef struct {
  gint64 file_id;
  guint64 frames;
  guint64 camera_frames;
  gint64 last_mono_ns;
  gchar *error;          /* owned; NULL for a clean end */
} DsSlotDone;

void ds_slot_book_init (DsSlotBook *book, guint index);
/* Closes the output without a report and frees what the book holds. */
void ds_slot_book_clear (DsSlotBook *book);

/* A file is in the slot: starting, playing or draining (a play is refused). */
gboolean ds_slot_book_busy (const DsSlotBook *book);
/* Its source side counts frames: starting or playing. */
gboolean ds_slot_book_active (const DsSlotBook *book);

/* Idle → starting `file_id`. new_camera restarts the camera count first. Opens (truncates)
 * output_path when not NULL (ds_slot_output_open). Refused, with the slot unchanged, when
 * it is busy (`slot <i> busy (file <id>)`, DS_SLOT_ERROR_BUSY) or the output cannot be
 * created. */
gboolean ds_slot_book_begin (DsSlotBook *book, gint64 file_id, gboolean new_camera,
    const gchar *output_path, GError **error);

/* One frame at the source side; position_ns: from the file start, -1 when unknown. */
DsSlotFrame ds_slot_book_frame (DsSlotBook *book, gint64 position_ns, gint64 mono_ns);

/* The file ended at its source: error NULL for its EOS; an EOS before any frame ends it
 * with "no video frames decoded". Starting/playing → draining. FALSE when no file was
 * active. */
gboolean ds_slot_book_drain (DsSlotBook *book, const gchar *error);

/* Draining → idle: closes the output and fills done (clear it with ds_slot_done_clear).
 * done->error is the error the file ended with, else the output's write error
 * (`cannot write output …`), else NULL. FALSE when the slot was not draining. */
gboolean ds_slot_book_finish (DsSlotBook *book, DsSlotDone *done);
void ds_slot_done_clear (DsSlotDone *done);

/* Sends what done reports for slot `index`: file_error with done->error when it is set,
 * else file_done. Main loop (the shim's context). */
void ds_slot_done_emit (const DsSlotDone *done, DsShim *shim, guint index);

/* Both at once, for a file whose frames are all written when its source ends. */
gboolean ds_slot_book_end (DsSlotBook *book, const gchar *error, DsSlotDone *done);

/* Any phase → idle now, output closed without a report, camera count restarted: `stop`.
 * out says what was playing. */
void ds_slot_book_stop (DsSlotBook *book, DsStopResult *out);

/* Restarts the camera count of an idle slot (`reset`); refused when busy, as play is. */
gboolean ds_slot_book_reset (DsSlotBook *book, GError **error);

/* Restarts the camera count now: a new camera in all but name (a live source back after
 * a long outage). */
void ds_slot_book_restart_camera (DsSlotBook *book);

/* Kept while a file is in the slot; duration_ns <= 0 is unknown. */
void ds_slot_book_set_duration (DsSlotBook *book, gint64 duration_ns);

/* state, file_id, position, duration and frames of the current (or, idle, the last) file,
 * camera_frames. */
void ds_slot_book_progress (const DsSlotBook *book, DsSlotProgress *out);

G_END_DECLS

#endif /* DS_SLOT_BOOK_H */
