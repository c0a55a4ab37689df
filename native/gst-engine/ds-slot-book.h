/* DsSlotBook: the per-slot bookkeeping of ds-gst-engine, free of GStreamer.
 *
 * A slot plays one file at a time. The book counts the file's frames and the camera's
 * frames (continuous across the files of one camera, reset between cameras), keeps the
 * last position, and writes the per-file output (docs/engine-protocol.md):
 * one line `<camera_frame> <file_frame> <pts_ns>` per frame.
 *
 * `generation` changes whenever a file begins or ends, so work queued from a streaming
 * thread for an earlier file can be recognised as stale. The book does no locking: the
 * caller serialises access. */
#ifndef DS_SLOT_BOOK_H
#define DS_SLOT_BOOK_H

#include <glib.h>

#include "ds-shim.h"
#include "ds-slot-output.h"

G_BEGIN_DECLS

typedef struct {
  DsSlotState state;
  gboolean has_file;
  gint64 file_id;
  guint64 generation;
  guint64 frames;        /* of the current (or last) file */
  guint64 camera_frames; /* since the last camera reset */
  gint64 position_ns;    /* stream time of the last frame, -1 = unknown */
  gint64 duration_ns;    /* -1 = unknown */
  gint64 first_mono_ns;  /* CLOCK_MONOTONIC of the file's first frame, -1 = none yet */
  gint64 last_mono_ns;   /* ... and of its last frame */
  DsSlotOutput out;      /* per-file output */
} DsSlotBook;

void ds_slot_book_init (DsSlotBook *book);
void ds_slot_book_clear (DsSlotBook *book);

/* Idle → playing `file_id`. new_camera resets the camera count first. Opens (truncates)
 * output_path when not NULL (ds_slot_output_open); on failure the slot stays idle and
 * error is set. */
gboolean ds_slot_book_begin (DsSlotBook *book, gint64 file_id, gboolean new_camera,
    const gchar *output_path, GError **error);

/* One decoded frame. pts_ns/position_ns: -1 when unknown. Returns TRUE for the file's
 * first frame. Ignored (FALSE) when the slot is idle. */
gboolean ds_slot_book_frame (DsSlotBook *book, gint64 pts_ns, gint64 position_ns,
    gint64 mono_ns);

/* Playing → idle: closes the output. Returns FALSE with error when the output could
 * not be written completely (ds_slot_output_close). reset_camera also restarts the
 * camera count. */
gboolean ds_slot_book_end (DsSlotBook *book, gboolean reset_camera, GError **error);

/* Restarts the camera count of an idle slot. */
void ds_slot_book_reset_camera (DsSlotBook *book);

void ds_slot_book_progress (const DsSlotBook *book, DsSlotProgress *out);

G_END_DECLS

#endif /* DS_SLOT_BOOK_H */
