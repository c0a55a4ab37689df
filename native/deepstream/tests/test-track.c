/* Unit tests of the DeepStream-free decisions of the deepstream-app adapter. */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "ds-test-tmp.h"
#include "ds-track.h"

#define MS (G_GINT64_CONSTANT (1000000))

static const DsTrackObject car = { 7, 2, "car", 0.875, 10.0, 20.0, 30.5, 40.25 };

typedef struct {
  gchar *dir;
  DsTrackSlot slot;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  (void) data;
  f->dir = ds_test_tmp_new ("ds-track-XXXXXX");
  ds_track_slot_init (&f->slot, 2);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  (void) data;
  ds_track_slot_clear (&f->slot);
  ds_test_tmp_free (f->dir);
}

/* Every frame of the draining file has left the tracker. */
static gboolean
slot_is_complete (const DsTrackSlot *slot)
{
  return slot->book.phase == DS_SLOT_PHASE_DRAINING && slot->seen >= slot->book.frames;
}

static gchar *
out_path (Fixture *f, const gchar *name)
{
  return g_build_filename (f->dir, name, NULL);
}

static gchar **
read_lines (const gchar *path)
{
  gchar *text = ds_test_read_file (path);
  gchar **lines;

  g_strchomp (text);
  lines = text[0] != '\0' ? g_strsplit (text, "\n", -1) : g_new0 (gchar *, 1);
  g_free (text);
  return lines;
}

/* Begin a file and push n frames at the source side. */
static void
play_frames (DsTrackSlot *slot, gint64 file_id, gboolean new_camera, const gchar *path,
    guint n, gboolean *send_reset)
{
  g_assert_true (ds_track_slot_begin (slot, file_id, new_camera, path, send_reset, NULL));
  for (guint i = 0; i < n; i++) {
    DsSlotFrame r = ds_track_slot_source_frame (slot, 1000 + (gint64) i * 40 * MS,
        (gint64) i);
    g_assert_cmpint (r, ==, i == 0 ? DS_SLOT_FRAME_FIRST : DS_SLOT_FRAME_COUNTED);
  }
}

static void
sink_frames (DsTrackSlot *slot, guint n, DsTrackSinkResult last)
{
  for (guint i = 0; i < n; i++) {
    DsTrackSinkResult r = ds_track_slot_sink_frame (slot, (gint64) i * 40 * MS, &car, 1,
        0, 1000 * MS);
    g_assert_cmpint (r, ==, i + 1 == n ? last : DS_TRACK_SINK_RECORDED);
  }
}

static void
test_eos_drains_before_done (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsSlotDone done;
  DsSlotProgress p;
  gchar *path = out_path (f, "a.txt");
  gchar **lines;

  (void) data;
  play_frames (&f->slot, 11, TRUE, path, 5, &send_reset);
  g_assert_true (send_reset); /* the slot starts dirty: placeholder leftovers */

  ds_slot_book_progress (&f->slot.book, &p);
  g_assert_cmpint (p.state, ==, DS_SLOT_PLAYING);
  g_assert_true (p.has_file);
  g_assert_cmpint (p.file_id, ==, 11);
  g_assert_cmpint (p.position_ns, ==, 4 * 40 * MS);
  g_assert_cmpint (p.duration_ns, ==, -1);
  ds_slot_book_set_duration (&f->slot.book, 200 * MS);
  ds_slot_book_progress (&f->slot.book, &p);
  g_assert_cmpint (p.duration_ns, ==, 200 * MS);
  g_assert_cmpuint (p.frames, ==, 5);

  /* The stream reset asked for must leave the tracker before frames are attributed. */
  g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, &car, 1, 0, 1000 * MS), ==,
      DS_TRACK_SINK_DISCARDED);
  ds_track_slot_sink_reset (&f->slot);

  sink_frames (&f->slot, 3, DS_TRACK_SINK_RECORDED);
  g_assert_false (ds_track_slot_source_end (&f->slot, NULL, 100));
  g_assert_cmpint (f->slot.book.phase, ==, DS_SLOT_PHASE_DRAINING);
  g_assert_false (slot_is_complete (&f->slot));
  /* Draining is busy: a new file must wait. */
  g_assert_false (ds_track_slot_begin (&f->slot, 12, FALSE, NULL, &send_reset, NULL));
  g_assert_cmpint (ds_track_slot_source_frame (&f->slot, 0, 0), ==, DS_SLOT_FRAME_IGNORED);
  sink_frames (&f->slot, 2, DS_TRACK_SINK_COMPLETE);

  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_cmpint (done.file_id, ==, 11);
  g_assert_cmpuint (done.frames, ==, 5);
  g_assert_cmpuint (done.camera_frames, ==, 5);
  g_assert_cmpint (done.last_mono_ns, ==, 4);
  g_assert_null (done.error);
  ds_slot_done_clear (&done);
  g_assert_false (ds_track_slot_finish (&f->slot, &done));

  /* Idle: the last file's figures stay visible, as the gst engine reports them. */
  ds_slot_book_progress (&f->slot.book, &p);
  g_assert_cmpint (p.state, ==, DS_SLOT_IDLE);
  g_assert_cmpint (p.position_ns, ==, 4 * 40 * MS);
  g_assert_cmpint (p.duration_ns, ==, 200 * MS);
  g_assert_cmpuint (p.frames, ==, 5);

  lines = read_lines (path);
  g_assert_cmpuint (g_strv_length (lines), ==, 5);
  g_assert_cmpstr (lines[0], ==,
      "0 7 car -1 -1 -10 10.00 20.00 40.50 60.25 -1 -1 -1 -1000 -1000 -1000 -10 0.8750 0 0 2");
  g_assert_true (g_str_has_prefix (lines[4], "4 7 car "));
  g_assert_true (g_str_has_suffix (lines[4], " 4 40000000 2"));
  g_strfreev (lines);
  g_free (path);
}

static void
test_eos_after_last_frame_completes_at_once (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsSlotDone done;

  (void) data;
  play_frames (&f->slot, 1, FALSE, NULL, 2, &send_reset);
  g_assert_false (send_reset); /* same camera: never a reset */
  sink_frames (&f->slot, 2, DS_TRACK_SINK_RECORDED);
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (slot_is_complete (&f->slot));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_cmpuint (done.frames, ==, 2);
  ds_slot_done_clear (&done);
}

static void
test_camera_continuity_and_reset (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsSlotDone done;
  gchar *p1 = out_path (f, "1.txt"), *p2 = out_path (f, "2.txt"), *p3 = out_path (f, "3.txt");
  gchar **lines;

  (void) data;
  play_frames (&f->slot, 1, TRUE, p1, 3, &send_reset);
  g_assert_true (send_reset);
  ds_track_slot_sink_reset (&f->slot);
  sink_frames (&f->slot, 3, DS_TRACK_SINK_RECORDED);
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  ds_slot_done_clear (&done);

  /* Next file of the same camera: no reset, the camera count goes on. */
  play_frames (&f->slot, 2, FALSE, p2, 2, &send_reset);
  g_assert_false (send_reset);
  sink_frames (&f->slot, 2, DS_TRACK_SINK_RECORDED);
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_cmpuint (done.frames, ==, 2);
  g_assert_cmpuint (done.camera_frames, ==, 5);
  ds_slot_done_clear (&done);
  lines = read_lines (p2);
  g_assert_cmpuint (g_strv_length (lines), ==, 2);
  g_assert_true (g_str_has_prefix (lines[0], "0 7 car "));
  g_assert_true (g_str_has_suffix (lines[0], " 3 0 2"));
  g_assert_true (g_str_has_suffix (lines[1], " 4 40000000 2"));
  g_strfreev (lines);

  /* A new camera after frames: reset asked for, camera count from 0. */
  play_frames (&f->slot, 3, TRUE, p3, 1, &send_reset);
  g_assert_true (send_reset);
  ds_track_slot_sink_reset (&f->slot);
  sink_frames (&f->slot, 1, DS_TRACK_SINK_RECORDED);
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_cmpuint (done.camera_frames, ==, 1);
  ds_slot_done_clear (&done);
  lines = read_lines (p3);
  g_assert_true (g_str_has_suffix (lines[0], " 0 0 2"));
  g_strfreev (lines);

  /* A new camera right after a reset with no frame in between: nothing to reset. */
  g_assert_true (ds_track_slot_reset (&f->slot, &send_reset, NULL));
  g_assert_true (send_reset);
  ds_track_slot_sink_reset (&f->slot);
  g_assert_true (ds_track_slot_begin (&f->slot, 4, TRUE, NULL, &send_reset, NULL));
  g_assert_false (send_reset);
  g_free (p1);
  g_free (p2);
  g_free (p3);
}

static void
test_stop_discards_leftovers_until_reset (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsStopResult stop;
  DsSlotDone done;
  gchar *p1 = out_path (f, "s1.txt"), *p2 = out_path (f, "s2.txt");
  gchar **lines;

  (void) data;
  play_frames (&f->slot, 5, TRUE, p1, 4, &send_reset);
  ds_track_slot_sink_reset (&f->slot);
  sink_frames (&f->slot, 1, DS_TRACK_SINK_RECORDED);

  ds_track_slot_stop (&f->slot, &stop, &send_reset);
  g_assert_true (stop.was_playing);
  g_assert_cmpint (stop.file_id, ==, 5);
  g_assert_cmpuint (stop.frames, ==, 4);
  g_assert_true (send_reset);
  g_assert_cmpint (f->slot.book.phase, ==, DS_SLOT_PHASE_IDLE);

  /* Next camera starts before the stopped file's frames left the tracker. */
  play_frames (&f->slot, 6, TRUE, p2, 2, &send_reset);
  g_assert_false (send_reset); /* the stop already reset it */
  for (int i = 0; i < 3; i++)
    g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, &car, 1, 0, 1000 * MS), ==,
        DS_TRACK_SINK_DISCARDED);
  ds_track_slot_sink_reset (&f->slot);
  sink_frames (&f->slot, 2, DS_TRACK_SINK_RECORDED);
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_cmpuint (done.frames, ==, 2);
  g_assert_cmpuint (done.camera_frames, ==, 2);
  ds_slot_done_clear (&done);

  lines = read_lines (p1);
  g_assert_cmpuint (g_strv_length (lines), ==, 1);
  g_strfreev (lines);
  lines = read_lines (p2);
  g_assert_cmpuint (g_strv_length (lines), ==, 2);
  g_strfreev (lines);

  /* Stop on an idle slot after a complete file: resets (frames went in), once. */
  ds_track_slot_stop (&f->slot, &stop, &send_reset);
  g_assert_false (stop.was_playing);
  g_assert_true (send_reset);
  ds_track_slot_stop (&f->slot, &stop, &send_reset);
  g_assert_false (send_reset);
  g_assert_cmpuint (f->slot.pending_resets, ==, 1);
  ds_track_slot_reset_not_sent (&f->slot);
  g_assert_cmpuint (f->slot.pending_resets, ==, 0);
  g_free (p1);
  g_free (p2);
}

static void
test_stop_while_draining (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsStopResult stop;
  DsSlotDone done;

  (void) data;
  play_frames (&f->slot, 9, FALSE, NULL, 3, &send_reset);
  g_assert_false (ds_track_slot_source_end (&f->slot, NULL, 0));
  ds_track_slot_stop (&f->slot, &stop, &send_reset);
  g_assert_true (stop.was_playing);
  g_assert_cmpuint (stop.frames, ==, 3);
  g_assert_true (send_reset);
  /* No completion for a stopped file. */
  g_assert_false (ds_track_slot_finish (&f->slot, &done));
  g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, &car, 1, 0, 1000 * MS), ==,
      DS_TRACK_SINK_DISCARDED);
}

static void
test_errors (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsSlotDone done;
  GError *err = NULL;
  gchar *bad = g_build_filename (f->dir, "missing", "out.txt", NULL);
  guint64 gen;

  (void) data;
  /* Output that cannot be created: refused, slot stays idle. */
  g_assert_false (ds_track_slot_begin (&f->slot, 1, TRUE, bad, &send_reset, &err));
  g_assert_error (err, DS_SLOT_ERROR, DS_SLOT_ERROR_OUTPUT);
  g_assert_nonnull (strstr (err->message, bad));
  g_clear_error (&err);
  g_assert_cmpint (f->slot.book.phase, ==, DS_SLOT_PHASE_IDLE);
  g_assert_true (f->slot.camera_dirty); /* nothing changed */

  /* Error before any frame: complete at once. */
  g_assert_true (ds_track_slot_begin (&f->slot, 2, FALSE, NULL, &send_reset, NULL));
  gen = f->slot.book.generation;
  g_assert_true (ds_track_slot_source_end (&f->slot, "not a video", 0));
  g_assert_cmpuint (f->slot.book.generation, !=, gen);
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_nonnull (done.error);
  g_assert_cmpstr (done.error, ==, "not a video");
  g_assert_cmpuint (done.frames, ==, 0);
  ds_slot_done_clear (&done);

  /* EOS before any frame: an error, not an empty result. */
  g_assert_true (ds_track_slot_begin (&f->slot, 21, FALSE, NULL, &send_reset, NULL));
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_nonnull (done.error);
  g_assert_cmpstr (done.error, ==, "no video frames decoded");
  ds_slot_done_clear (&done);

  /* Error mid-file: drains until the frames stop coming. */
  play_frames (&f->slot, 3, FALSE, NULL, 4, &send_reset);
  sink_frames (&f->slot, 1, DS_TRACK_SINK_RECORDED);
  g_assert_false (ds_track_slot_source_end (&f->slot, "decode error", 1000 * MS));
  g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, &car, 1, 1200 * MS, 1000 * MS), ==,
      DS_TRACK_SINK_RECORDED);
  g_assert_false (ds_track_slot_drain_expired (&f->slot, 1600 * MS, 500 * MS));
  g_assert_true (ds_track_slot_drain_expired (&f->slot, 1701 * MS, 500 * MS));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_cmpstr (done.error, ==, "decode error");
  g_assert_cmpuint (done.frames, ==, 4);
  ds_slot_done_clear (&done);
  g_assert_false (ds_track_slot_drain_expired (&f->slot, G_MAXINT64, 0));

  /* Busy slots refuse a reset. */
  play_frames (&f->slot, 4, FALSE, NULL, 1, &send_reset);
  g_assert_false (ds_track_slot_reset (&f->slot, &send_reset, &err));
  g_assert_nonnull (err);
  g_clear_error (&err);
  g_free (bad);
}

/* An output that failed to be written turns a clean end into an error (the output
 * itself is tested with the slot core, native/tests/test-slot-core.c). */
static void
test_output_write_failure_is_an_error (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsSlotDone done;
  gchar *path = out_path (f, "big.txt");
  gchar *want = g_strdup_printf ("cannot write output %s: %s", path, g_strerror (ENOSPC));

  (void) data;
  play_frames (&f->slot, 8, FALSE, path, 2, &send_reset);
  sink_frames (&f->slot, 1, DS_TRACK_SINK_RECORDED);
  f->slot.book.out.errsv = ENOSPC; /* as a failed write leaves it */
  sink_frames (&f->slot, 1, DS_TRACK_SINK_RECORDED);
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_nonnull (done.error);
  g_assert_cmpstr (done.error, ==, want);
  g_assert_cmpuint (done.frames, ==, 2);
  ds_slot_done_clear (&done);
  g_assert_cmpint (f->slot.book.phase, ==, DS_SLOT_PHASE_IDLE);

  /* The next file's output starts clean. */
  play_frames (&f->slot, 9, FALSE, path, 1, &send_reset);
  sink_frames (&f->slot, 1, DS_TRACK_SINK_RECORDED);
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_null (done.error);
  ds_slot_done_clear (&done);
  g_free (want);
  g_free (path);
}

/* Engine refusals read exactly as docs/engine-protocol.md (and the gst engine) say. */
static void
test_refusal_texts (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  GError *err = NULL;

  (void) data;
  play_frames (&f->slot, 12, FALSE, NULL, 1, &send_reset);
  g_assert_false (ds_track_slot_begin (&f->slot, 13, FALSE, NULL, &send_reset, &err));
  g_assert_error (err, DS_SLOT_ERROR, DS_SLOT_ERROR_BUSY);
  g_assert_cmpstr (err->message, ==, "slot 2 busy (file 12)");
  g_clear_error (&err);
  g_assert_false (ds_track_slot_reset (&f->slot, &send_reset, &err));
  g_assert_cmpstr (err->message, ==, "slot 2 busy (file 12)");
  g_clear_error (&err);
}

/* A file finished by the drain deadline with frames still inside the pipeline: those
 * late frames must not land in the next file of the slot. */
static void
test_late_frames_after_drain_deadline (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsSlotDone done;
  gchar *p1 = out_path (f, "late1.txt"), *p2 = out_path (f, "late2.txt");
  gchar *p3 = out_path (f, "late3.txt");
  gchar **lines;

  (void) data;
  play_frames (&f->slot, 1, TRUE, p1, 5, &send_reset);
  ds_track_slot_sink_reset (&f->slot);
  sink_frames (&f->slot, 2, DS_TRACK_SINK_RECORDED);
  g_assert_false (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (ds_track_slot_drain_expired (&f->slot, 6000 * MS, 5000 * MS));
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "*2 of 5 frames left*");
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_test_assert_expected_messages ();
  g_assert_nonnull (done.error);
  g_assert_cmpstr (done.error, ==, "only 2 of 5 frames came out of the pipeline after the "
      "file ended (output incomplete)");
  ds_slot_done_clear (&done);

  /* Same camera (no reset): the 3 late frames are dropped, then file 2 counts. */
  play_frames (&f->slot, 2, FALSE, p2, 2, &send_reset);
  g_assert_false (send_reset);
  for (int i = 0; i < 3; i++)
    g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, &car, 1, 0, 1000 * MS), ==,
        DS_TRACK_SINK_DISCARDED);
  sink_frames (&f->slot, 1, DS_TRACK_SINK_RECORDED);
  g_assert_cmpuint (f->slot.seen, ==, 1);
  g_assert_false (ds_track_slot_source_end (&f->slot, NULL, 0));
  sink_frames (&f->slot, 1, DS_TRACK_SINK_COMPLETE);
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_null (done.error);
  ds_slot_done_clear (&done);
  lines = read_lines (p2);
  g_assert_cmpuint (g_strv_length (lines), ==, 2);
  g_assert_true (g_str_has_prefix (lines[0], "0 7 car "));
  g_strfreev (lines);

  /* New camera after another short file: the reset follows the late frames, so once it
   * has left the tracker nothing more is held back, even if they never came. */
  play_frames (&f->slot, 3, FALSE, NULL, 4, &send_reset);
  g_assert_false (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "*0 of 4 frames left*");
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_test_assert_expected_messages ();
  g_assert_nonnull (done.error);
  ds_slot_done_clear (&done);
  g_assert_cmpuint (f->slot.leftover, ==, 4);
  play_frames (&f->slot, 4, TRUE, p3, 2, &send_reset);
  g_assert_true (send_reset);
  g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, &car, 1, 0, 1000 * MS), ==,
      DS_TRACK_SINK_DISCARDED);
  ds_track_slot_sink_reset (&f->slot);
  g_assert_cmpuint (f->slot.leftover, ==, 0);
  sink_frames (&f->slot, 2, DS_TRACK_SINK_RECORDED);
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_null (done.error);
  ds_slot_done_clear (&done);
  lines = read_lines (p3);
  g_assert_cmpuint (g_strv_length (lines), ==, 2);
  g_strfreev (lines);
  g_free (p1);
  g_free (p2);
  g_free (p3);
}

/* A reset still in flight when a file ends short is ahead of its late frames: passing
 * the tracker, it does not release them. */
static void
test_late_frames_behind_pending_reset (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsSlotDone done;

  (void) data;
  play_frames (&f->slot, 1, TRUE, NULL, 3, &send_reset);
  g_assert_true (send_reset);
  g_assert_false (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "*0 of 3 frames left*");
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_test_assert_expected_messages ();
  ds_slot_done_clear (&done);
  play_frames (&f->slot, 2, FALSE, NULL, 1, &send_reset);
  ds_track_slot_sink_reset (&f->slot); /* the reset of file 1's camera */
  for (int i = 0; i < 3; i++)
    g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, &car, 1, 0, 1000 * MS), ==,
        DS_TRACK_SINK_DISCARDED);
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0) == FALSE);
  sink_frames (&f->slot, 1, DS_TRACK_SINK_COMPLETE);
}

/* A stop's flush met the new camera's reset still in the muxer: it is gone with the
 * frames behind it; the next camera's frames are recorded behind its own reset. A reset
 * that had left the muxer before the flush still holds the stopped file's frames back. */
static void
test_reset_lost_in_flush (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsStopResult stop;
  DsSlotDone done;

  (void) data;
  for (int out_before_flush = 0; out_before_flush < 2; out_before_flush++) {
    play_frames (&f->slot, 1, TRUE, NULL, 3, &send_reset);
    g_assert_true (send_reset);
    ds_track_slot_reset_sent (&f->slot);
    if (out_before_flush)
      ds_track_slot_mux_reset (&f->slot);
    g_assert_cmpuint (ds_track_slot_mux_flushed (&f->slot), ==, out_before_flush ? 0 : 1);
    g_assert_cmpuint (ds_track_slot_mux_flushed (&f->slot), ==, 0); /* counted once */
    ds_track_slot_stop (&f->slot, &stop, &send_reset);
    g_assert_true (send_reset);
    play_frames (&f->slot, 2, TRUE, NULL, 2, &send_reset);
    g_assert_false (send_reset); /* the stop's reset goes in front of it */
    ds_track_slot_reset_sent (&f->slot);
    if (out_before_flush) {
      ds_track_slot_sink_reset (&f->slot); /* file 1's, then its frames that got out */
      g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, &car, 1, 0, 1000 * MS), ==,
          DS_TRACK_SINK_DISCARDED);
    }
    ds_track_slot_mux_reset (&f->slot);
    ds_track_slot_sink_reset (&f->slot);
    g_assert_cmpuint (f->slot.pending_resets, ==, 0);
    sink_frames (&f->slot, 2, DS_TRACK_SINK_RECORDED);
    g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
    g_assert_true (ds_track_slot_finish (&f->slot, &done));
    g_assert_null (done.error);
    g_assert_cmpuint (done.frames, ==, 2);
    ds_slot_done_clear (&done);
  }
  /* A reset the pad refused was never in the muxer: a flush then drops nothing. */
  play_frames (&f->slot, 3, TRUE, NULL, 1, &send_reset);
  g_assert_true (send_reset);
  ds_track_slot_reset_sent (&f->slot);
  ds_track_slot_reset_not_sent (&f->slot);
  g_assert_cmpuint (f->slot.pending_resets, ==, 0);
  g_assert_cmpuint (ds_track_slot_mux_flushed (&f->slot), ==, 0);
}

static void
test_check_tracker (void)
{
  g_assert_null (ds_track_check_tracker (FALSE, 0));
  g_assert_null (ds_track_check_tracker (TRUE, 1));
  g_assert_null (ds_track_check_tracker (TRUE, 3));
  g_assert_nonnull (strstr (ds_track_check_tracker (TRUE, 0), "tracking-id-reset-mode"));
  g_assert_nonnull (ds_track_check_tracker (TRUE, 2));
}

static void
test_reset_never_seen_times_out (Fixture *f, gconstpointer data)
{
  gboolean send_reset;

  (void) data;
  play_frames (&f->slot, 1, TRUE, NULL, 3, &send_reset);
  g_assert_true (send_reset);
  g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, NULL, 0, 100 * MS, 500 * MS), ==,
      DS_TRACK_SINK_DISCARDED);
  g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, NULL, 0, 600 * MS, 500 * MS), ==,
      DS_TRACK_SINK_DISCARDED);
  g_test_expect_message (G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "stream reset not seen*");
  g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, NULL, 0, 601 * MS, 500 * MS), ==,
      DS_TRACK_SINK_RECORDED);
  g_test_assert_expected_messages ();
  g_assert_cmpuint (f->slot.seen, ==, 1);
}

static void
test_idle_frames_are_ignored (Fixture *f, gconstpointer data)
{
  gboolean send_reset;

  (void) data;
  g_assert_cmpint (ds_track_slot_source_frame (&f->slot, 0, 0), ==, DS_SLOT_FRAME_IGNORED);
  g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, &car, 1, 0, 0), ==,
      DS_TRACK_SINK_DISCARDED);
  g_assert_false (ds_track_slot_source_end (&f->slot, NULL, 0));
  /* A frame cannot leave the tracker before it was pushed. */
  g_assert_true (ds_track_slot_begin (&f->slot, 1, FALSE, NULL, &send_reset, NULL));
  g_assert_cmpint (ds_track_slot_sink_frame (&f->slot, 0, &car, 1, 0, 0), ==,
      DS_TRACK_SINK_DISCARDED);
}

static void
test_format_object (void)
{
  GString *s = g_string_new (NULL);
  DsTrackObject o = { -1, 3, "traffic light", NAN, -1.5, 0.0, 2.0, 1.0 };
  gchar *old_locale = g_strdup (setlocale (LC_NUMERIC, NULL));

  ds_track_format_object (s, &o, 12, 40, -1);
  g_assert_cmpstr (s->str, ==, "12 -1 traffic_light -1 -1 -10 -1.50 0.00 0.50 1.00 "
      "-1 -1 -1 -1000 -1000 -1000 -10 -1.0000 40 -1 3");

  /* A decimal-comma locale must not leak into the output. */
  if (setlocale (LC_NUMERIC, "de_DE.UTF-8") != NULL) {
    g_string_truncate (s, 0);
    ds_track_format_object (s, &car, 0, 0, 5);
    g_assert_nonnull (strstr (s->str, " 10.00 20.00 "));
  }
  setlocale (LC_NUMERIC, old_locale);
  g_free (old_locale);

  g_string_truncate (s, 0);
  o.label = NULL;
  o.track_id = 42;
  o.confidence = 0.5;
  ds_track_format_object (s, &o, 0, 0, 33);
  g_assert_true (g_str_has_prefix (s->str, "0 42 class_3 "));
  g_assert_true (g_str_has_suffix (s->str, " 0.5000 0 33 3"));

  g_string_truncate (s, 0);
  o.label = "";
  o.confidence = -0.1;
  ds_track_format_object (s, &o, 0, 0, 0);
  g_assert_true (g_str_has_prefix (s->str, "0 42 class_3 "));
  g_assert_nonnull (strstr (s->str, " -1.0000 "));
  g_string_free (s, TRUE);
}

static void
test_config_arg (void)
{
  const struct {
    const gchar *argv[5];
    const gchar *want;
  } cases[] = {
    { { "app", "-c", "a.txt", NULL }, "a.txt" },
    { { "app", "-cb.txt", NULL }, "b.txt" },
    { { "app", "--cfg-file", "c.txt", NULL }, "c.txt" },
    { { "app", "--cfg-file=d.txt", "-c", "e.txt", NULL }, "d.txt" },
    { { "app", "-t", "-c", NULL }, NULL },
    { { "app", "--", "-c", "x", NULL }, NULL },
    { { "app", "--version", NULL }, NULL },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    gint argc = (gint) g_strv_length ((gchar **) cases[i].argv);
    gchar *got = ds_track_config_arg (cases[i].argv, argc);
    g_assert_cmpstr (got, ==, cases[i].want);
    g_free (got);
  }
}

static void
test_watch_decide (void)
{
  g_assert_cmpint (ds_track_watch_decide (TRUE, FALSE, FALSE, TRUE, 0, 10), ==,
      DS_TRACK_WATCH_FAIL);
  g_assert_cmpint (ds_track_watch_decide (FALSE, FALSE, FALSE, TRUE, 99, 10), ==,
      DS_TRACK_WATCH_DONE);
  g_assert_cmpint (ds_track_watch_decide (FALSE, FALSE, TRUE, FALSE, 5, 10), ==,
      DS_TRACK_WATCH_WAIT);
  g_assert_cmpint (ds_track_watch_decide (FALSE, FALSE, FALSE, FALSE, 5, 10), ==,
      DS_TRACK_WATCH_KICK);
  g_assert_cmpint (ds_track_watch_decide (FALSE, FALSE, TRUE, FALSE, 10, 10), ==,
      DS_TRACK_WATCH_FAIL);
  /* The start failed, or its deadline passed, with the file's bus error already queued
   * (a 404 under load): the error ends the file, in its own words. */
  g_assert_cmpint (ds_track_watch_decide (TRUE, TRUE, FALSE, FALSE, 0, 10), ==,
      DS_TRACK_WATCH_DONE);
  g_assert_cmpint (ds_track_watch_decide (FALSE, TRUE, TRUE, FALSE, 10, 10), ==,
      DS_TRACK_WATCH_DONE);
}

/* A live source back after a long outage: the camera restarts within the same file. */
static void
test_restart_camera_mid_file (Fixture *f, gconstpointer data)
{
  gboolean send_reset;
  DsSlotDone done;
  gchar *p = out_path (f, "live.txt");
  gchar **lines;

  (void) data;
  play_frames (&f->slot, 1, TRUE, p, 3, &send_reset);
  ds_track_slot_sink_reset (&f->slot);
  sink_frames (&f->slot, 3, DS_TRACK_SINK_RECORDED);
  ds_track_slot_restart_camera (&f->slot, &send_reset);
  g_assert_true (send_reset);
  for (gint i = 0; i < 2; i++)
    g_assert_cmpint (ds_track_slot_source_frame (&f->slot, (10 + i) * 40 * MS, 10 + i), ==,
        DS_SLOT_FRAME_COUNTED);
  ds_track_slot_sink_reset (&f->slot); /* sent in front of the first frame after it */
  sink_frames (&f->slot, 2, DS_TRACK_SINK_RECORDED);
  g_assert_true (ds_track_slot_source_end (&f->slot, NULL, 0));
  g_assert_true (ds_track_slot_finish (&f->slot, &done));
  g_assert_cmpuint (done.frames, ==, 5);
  g_assert_cmpuint (done.camera_frames, ==, 2);
  ds_slot_done_clear (&done);
  lines = read_lines (p);
  g_assert_cmpuint (g_strv_length (lines), ==, 5);
  g_assert_true (g_str_has_prefix (lines[2], "2 7 car "));
  g_assert_true (g_str_has_suffix (lines[2], " 2 80000000 2"));
  g_assert_true (g_str_has_prefix (lines[3], "3 7 car "));
  g_assert_true (g_str_has_suffix (lines[3], " 0 0 2"));
  g_assert_true (g_str_has_suffix (lines[4], " 1 40000000 2"));
  g_strfreev (lines);
  g_free (p);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/track/" name, Fixture, NULL, fixture_setup, fn, \
      fixture_teardown)
  ADD ("eos-drains-before-done", test_eos_drains_before_done);
  ADD ("eos-after-last-frame", test_eos_after_last_frame_completes_at_once);
  ADD ("camera-continuity-and-reset", test_camera_continuity_and_reset);
  ADD ("stop-discards-leftovers", test_stop_discards_leftovers_until_reset);
  ADD ("stop-while-draining", test_stop_while_draining);
  ADD ("errors", test_errors);
  ADD ("output-write-failure", test_output_write_failure_is_an_error);
  ADD ("refusal-texts", test_refusal_texts);
  ADD ("late-frames-after-drain-deadline", test_late_frames_after_drain_deadline);
  ADD ("late-frames-behind-pending-reset", test_late_frames_behind_pending_reset);
  ADD ("reset-never-seen", test_reset_never_seen_times_out);
  ADD ("reset-lost-in-flush", test_reset_lost_in_flush);
  ADD ("idle-frames-ignored", test_idle_frames_are_ignored);
  ADD ("restart-camera-mid-file", test_restart_camera_mid_file);
#undef ADD
  g_test_add_func ("/track/format-object", test_format_object);
  g_test_add_func ("/track/config-arg", test_config_arg);
  g_test_add_func ("/track/watch-decide", test_watch_decide);
  g_test_add_func ("/track/check-tracker", test_check_tracker);
  return g_test_run ();
}
