/* DsTrack: the DeepStream-free decisions of the deepstream-app adapter.
 *
 * One DsTrackSlot per stream slot: a DsSlotBook (ds-slot-book.h) and what the tracker
 * between slot output and per-file output adds. The adapter feeds it from three places
 * and acts on what it returns; it does no I/O on GStreamer and no locking (the adapter
 * serialises every call with one mutex):
 *
 *  - the source side: each buffer and the EOS at the slot's output (the ghost pad in front
 *    of the muxer) counts the frames pushed into the pipeline for the current file;
 *  - the sink side: each frame leaving the tracker (by pad index) is attributed to the
 *    slot's current file and written to its per-file output;
 *  - the main loop: play / stop / reset requests, errors, drain deadlines.
 *
 * Frame → file mapping: a slot never has two files in flight. A file that ends (EOS or
 * error) is "draining" until every frame pushed for it has left the tracker (or a
 * deadline passes); only then is it done and the slot idle. A stop does not wait: it
 * queues a stream reset, and frames of the slot that leave the tracker before that reset
 * event does are the stopped file's leftovers and are discarded.
 *
 * Camera boundaries: a stream reset (tracker state of the slot dropped, IDs continue) is
 * asked for on play with new_camera, on stop and on reset — only when frames went into
 * the pipeline since the last reset, and never between files of one camera. */
#ifndef DS_TRACK_H
#define DS_TRACK_H

#include <glib.h>

#include "ds-slot-book.h"

G_BEGIN_DECLS

/* One object of a frame after the tracker. */
typedef struct {
  gint64 track_id;     /* -1 = untracked */
  gint class_id;
  const gchar *label;  /* may be NULL or empty */
  gdouble confidence;  /* detector confidence, < 0 = unknown */
  gdouble left, top, width, height; /* pixels */
} DsTrackObject;

typedef enum {
  DS_TRACK_SINK_DISCARDED = 0, /* not attributed to any file */
  DS_TRACK_SINK_RECORDED,
  DS_TRACK_SINK_COMPLETE,      /* recorded, and the draining file is now complete */
} DsTrackSinkResult;

/* A DsSlotBook (the file, its frames at the slot output, the camera count, the output
 * file, busy/stop/reset/progress: as the gst engine keeps them), and what only a pipeline
 * with a muxer and a tracker between the slot output and the per-file output needs on
 * top: the frames counted again after the tracker, a file that drains, and camera resets
 * that are events travelling with the frames. The gst engine writes each frame where it
 * counts it, so its slots need none of this. */
typedef struct {
  DsSlotBook book;         /* book.frames: pushed at the slot output */

  /* source side */
  guint64 camera_base;     /* book.camera_frames when the current file began */
  gint64 first_pts_ns;     /* -1 = none yet */
  gboolean camera_dirty;   /* frames went in since the last stream reset */

  /* sink side */
  guint64 seen;            /* frames of the current file that left the tracker */
  guint pending_resets;    /* stream resets asked for that have not left the tracker yet */
  guint resets_in_muxer;   /* of those, sent into the muxer pad and not out of it yet */
  gint64 discard_since_ns; /* first frame discarded for a pending reset, -1 = none */
  gint64 drain_since_ns;   /* last sink progress while draining */
  guint64 leftover;        /* frames of ended files that may still leave the tracker */
  guint leftover_gate;     /* pending resets that are ahead of those frames */
} DsTrackSlot;

void ds_track_slot_init (DsTrackSlot *slot, guint index);
void ds_track_slot_clear (DsTrackSlot *slot);

/* Idle → starting `file_id` (ds_slot_book_begin: refused when the slot is busy or
 * output_path cannot be created). *send_reset: the caller must send a stream reset into
 * the slot's muxer pad before any frame of this file (new camera after frames of another
 * one). */
gboolean ds_track_slot_begin (DsTrackSlot *slot, gint64 file_id, gboolean new_camera,
    const gchar *output_path, gboolean *send_reset, GError **error);

/* A buffer at the slot output. pts_ns -1 = none. */
DsSlotFrame ds_track_slot_source_frame (DsTrackSlot *slot, gint64 pts_ns, gint64 mono_ns);

/* The current file reached EOS (error = NULL) or failed at the source side
 * (ds_slot_book_drain: an EOS before any frame counts as an error). The slot drains;
 * returns TRUE when the file is already complete (call ds_track_slot_finish). FALSE also
 * when there is no file to end. */
gboolean ds_track_slot_source_end (DsTrackSlot *slot, const gchar *error, gint64 now_ns);

/* A frame of this slot leaving the tracker, with its objects. */
DsTrackSinkResult ds_track_slot_sink_frame (DsTrackSlot *slot, gint64 pts_ns,
    const DsTrackObject *objects, guint n_objects, gint64 now_ns,
    gint64 reset_timeout_ns);

/* A stream reset of this slot left the tracker. */
void ds_track_slot_sink_reset (DsTrackSlot *slot);

/* A draining file whose frames stopped coming for timeout_ns is complete anyway
 * (frames were lost downstream, or are late). TRUE when the caller should finish it now.
 * Its frames that come later are discarded, not counted for the next file, until a
 * stream reset sent after it leaves the tracker. */
gboolean ds_track_slot_drain_expired (const DsTrackSlot *slot, gint64 now_ns,
    gint64 timeout_ns);

/* Draining → idle (ds_slot_book_finish): closes the output and fills done (clear it with
 * ds_slot_done_clear). A file that ended cleanly but whose frames did not all leave the
 * tracker ends with `only S of P frames came out of the pipeline …`. */
gboolean ds_track_slot_finish (DsTrackSlot *slot, DsSlotDone *done);

/* Any phase → idle now (ds_slot_book_stop). The camera state is reset: *send_reset as for
 * begin. */
void ds_track_slot_stop (DsTrackSlot *slot, DsStopResult *out, gboolean *send_reset);

/* Resets the camera state of an idle slot; refused when busy. */
gboolean ds_track_slot_reset (DsTrackSlot *slot, gboolean *send_reset, GError **error);

/* A live source came back after a long outage (DS_LIVE_KEEP_TRACKER_MS): the camera
 * state restarts within the current file, before the frame being counted now, as for a
 * new camera (*send_reset as for begin); its camera frame index restarts at 0. */
void ds_track_slot_restart_camera (DsTrackSlot *slot, gboolean *send_reset);

/* A reset that was asked for could not be sent: no leftover frames will be marked. */
void ds_track_slot_reset_not_sent (DsTrackSlot *slot);

/* The reset asked for goes into the slot's muxer pad now (before the send: it may come
 * out of the muxer before the send returns; ds_track_slot_reset_not_sent when refused). */
void ds_track_slot_reset_sent (DsTrackSlot *slot);

/* A stream reset of this slot came out of the muxer. */
void ds_track_slot_mux_reset (DsTrackSlot *slot);

/* The slot's muxer pad was flushed. A flush drops what the pad still queues, serialized
 * events included (GStreamer's rule for non-sticky events; the legacy muxer is closed):
 * the resets that had not come out of the muxer yet will never leave the tracker, and
 * the frames behind them are gone with them. They no longer hold the next file's frames
 * back. Returns how many were dropped. */
guint ds_track_slot_mux_flushed (DsTrackSlot *slot);

/* One KITTI tracking label line (no newline) for an object of file frame `file_frame`:
 *   frame track_id type truncated occluded alpha left top right bottom
 *   height width length x y z rotation_y score camera_frame pts_ns class_id
 * Unknown 3-D fields use KITTI's "don't know" values; type is the label with blanks
 * and non-ASCII bytes replaced by '_' ("class_<id>" when there is none). */
void ds_track_format_object (GString *out, const DsTrackObject *obj, guint64 file_frame,
    guint64 camera_frame, gint64 pts_ns);

/* Why a config cannot run in control mode with this tracker setting, or NULL: the stream
 * reset of a new camera only drops tracks when tracking-id-reset-mode has bit 0 set. */
const gchar *ds_track_check_tracker (gboolean enabled, guint tracking_id_reset_mode);

/* The deepstream-app config file named on a command line (-c X, -cX, --cfg-file X,
 * --cfg-file=X; the first one wins), or NULL. */
gchar *ds_track_config_arg (const gchar *const *argv, gint argc);

/* Start watchdog of a slot that was asked to play. */
typedef enum {
  DS_TRACK_WATCH_WAIT = 0,  /* still changing state: look again later */
  DS_TRACK_WATCH_DONE,      /* playing, or a bus error of the file is queued: stop watching */
  DS_TRACK_WATCH_KICK,      /* settled below PLAYING: set PLAYING, keep watching */
  DS_TRACK_WATCH_FAIL,      /* failed or past the deadline: report a file error */
} DsTrackWatch;

/* error_queued: a bus error of this file (or live attempt) is on its way to the main
 * loop; it ends the file with its own words (a 404 is a refusal, not a retried start
 * failure), so the watchdog steps aside even when the start has failed meanwhile. */
DsTrackWatch ds_track_watch_decide (gboolean failed, gboolean error_queued,
    gboolean async_pending, gboolean playing, gint64 elapsed_ns, gint64 deadline_ns);

G_END_DECLS

#endif /* DS_TRACK_H */
