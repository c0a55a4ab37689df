/* Unit tests of the slot book both engines keep (ds-slot-book.h): phases, counts, the
 * texts a file ends with, busy refusals, stop, reset and progress. What each engine writes
 * per frame is tested with it (test-engine-core.c, test-track.c). */
#include <errno.h>

#include <glib.h>

#include "ds-slot-book.h"
#include "ds-test-tmp.h"

typedef struct {
  gchar *dir;
  DsSlotBook b;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  (void) data;
  f->dir = ds_test_tmp_new ("ds-book-XXXXXX");
  ds_slot_book_init (&f->b, 3);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  (void) data;
  ds_slot_book_clear (&f->b);
  ds_test_tmp_free (f->dir);
}

static void
play_frames (DsSlotBook *b, gint64 file_id, gboolean new_camera, const gchar *out, guint n)
{
  GError *err = NULL;

  g_assert_true (ds_slot_book_begin (b, file_id, new_camera, out, &err));
  g_assert_no_error (err);
  g_assert_cmpint (b->phase, ==, DS_SLOT_PHASE_STARTING);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (ds_slot_book_frame (b, i * 40, 100 + i), ==,
        i == 0 ? DS_SLOT_FRAME_FIRST : DS_SLOT_FRAME_COUNTED);
}

/* idle → starting → playing → draining → idle; the generation changes at each step
 * that ends something. */
static void
test_phases (Fixture *f, gconstpointer data)
{
  DsSlotBook *b = &f->b;
  DsSlotProgress p = { 0 };
  DsSlotDone done;
  guint64 gen = b->generation;

  (void) data;
  g_assert_false (ds_slot_book_busy (b));
  g_assert_false (ds_slot_book_drain (b, NULL)); /* no file to end */
  g_assert_false (ds_slot_book_finish (b, &done));
  g_assert_cmpint (ds_slot_book_frame (b, 0, 0), ==, DS_SLOT_FRAME_IGNORED);

  play_frames (b, 7, TRUE, NULL, 3);
  g_assert_cmpuint (b->generation, !=, gen);
  g_assert_cmpint (b->phase, ==, DS_SLOT_PHASE_PLAYING);
  g_assert_true (ds_slot_book_active (b));
  g_assert_cmpint (b->first_mono_ns, ==, 100);
  g_assert_cmpint (b->last_mono_ns, ==, 102);
  ds_slot_book_set_duration (b, 0); /* unknown */
  g_assert_cmpint (b->duration_ns, ==, -1);
  ds_slot_book_set_duration (b, 1000);
  ds_slot_book_progress (b, &p);
  g_assert_cmpint (p.state, ==, DS_SLOT_PLAYING);
  g_assert_true (p.has_file);
  g_assert_cmpint (p.file_id, ==, 7);
  g_assert_cmpint (p.position_ns, ==, 80);
  g_assert_cmpint (p.duration_ns, ==, 1000);
  g_assert_cmpuint (p.frames, ==, 3);
  g_assert_cmpuint (p.camera_frames, ==, 3);

  gen = b->generation;
  g_assert_true (ds_slot_book_drain (b, NULL));
  g_assert_cmpuint (b->generation, !=, gen);
  g_assert_cmpint (b->phase, ==, DS_SLOT_PHASE_DRAINING);
  g_assert_true (ds_slot_book_busy (b));
  g_assert_false (ds_slot_book_active (b));
  g_assert_cmpint (ds_slot_book_frame (b, 0, 0), ==, DS_SLOT_FRAME_IGNORED);
  g_assert_false (ds_slot_book_drain (b, "late")); /* ended once */

  gen = b->generation;
  g_assert_true (ds_slot_book_finish (b, &done));
  g_assert_cmpuint (b->generation, !=, gen);
  g_assert_cmpint (done.file_id, ==, 7);
  g_assert_cmpuint (done.frames, ==, 3);
  g_assert_cmpuint (done.camera_frames, ==, 3);
  g_assert_cmpint (done.last_mono_ns, ==, 102);
  g_assert_null (done.error);
  ds_slot_done_clear (&done);
  g_assert_false (ds_slot_book_finish (b, &done));

  /* Idle: the last file's counts and position stay visible. */
  ds_slot_book_progress (b, &p);
  g_assert_cmpint (p.state, ==, DS_SLOT_IDLE);
  g_assert_cmpuint (p.frames, ==, 3);
  g_assert_cmpint (p.position_ns, ==, 80);
  g_assert_cmpint (p.duration_ns, ==, 1000);
  ds_slot_book_set_duration (b, 5000); /* no file: not kept */
  g_assert_cmpint (b->duration_ns, ==, 1000);

  /* The next file of the camera: its own counts, the camera's go on. */
  play_frames (b, 8, FALSE, NULL, 2);
  g_assert_cmpint (b->position_ns, ==, 40);
  g_assert_cmpint (b->duration_ns, ==, -1);
  g_assert_cmpuint (b->frames, ==, 2);
  g_assert_cmpuint (b->camera_frames, ==, 5);
  g_assert_true (ds_slot_book_end (b, NULL, &done));
  g_assert_null (done.error);
  g_assert_cmpuint (done.camera_frames, ==, 5);
  ds_slot_done_clear (&done);
  /* A new camera: its count restarts. */
  play_frames (b, 9, TRUE, NULL, 1);
  g_assert_cmpuint (b->camera_frames, ==, 1);
}

/* A busy slot refuses play and reset, with the words both engines answer. */
static void
test_busy (Fixture *f, gconstpointer data)
{
  DsSlotBook *b = &f->b;
  GError *err = NULL;

  (void) data;
  play_frames (b, 12, TRUE, NULL, 1);
  g_assert_false (ds_slot_book_begin (b, 13, FALSE, NULL, &err));
  g_assert_error (err, DS_SLOT_ERROR, DS_SLOT_ERROR_BUSY);
  g_assert_cmpstr (err->message, ==, "slot 3 busy (file 12)");
  g_clear_error (&err);
  g_assert_cmpint (b->file_id, ==, 12);
  g_assert_false (ds_slot_book_reset (b, &err));
  g_assert_error (err, DS_SLOT_ERROR, DS_SLOT_ERROR_BUSY);
  g_clear_error (&err);
  g_assert_cmpuint (b->camera_frames, ==, 1);
  /* Draining is busy too. */
  g_assert_true (ds_slot_book_drain (b, NULL));
  g_assert_false (ds_slot_book_begin (b, 13, FALSE, NULL, &err));
  g_assert_cmpstr (err->message, ==, "slot 3 busy (file 12)");
  g_clear_error (&err);

  ds_slot_book_init (b, 0);
  b->phase = DS_SLOT_PHASE_PLAYING;
  b->file_id = -1;
  g_assert_false (ds_slot_book_begin (b, 1, FALSE, NULL, &err));
  g_assert_cmpstr (err->message, ==, "slot 0 busy (file -1)");
  g_clear_error (&err);
  b->phase = DS_SLOT_PHASE_IDLE;
}

/* What a file ends with: the error given, else no frame at all, else the output's write
 * error. */
static void
test_end_texts (Fixture *f, gconstpointer data)
{
  DsSlotBook *b = &f->b;
  gchar *o = g_build_filename (f->dir, "o.txt", NULL);
  gchar *want = g_strdup_printf ("cannot write output %s: %s", o, g_strerror (ENOSPC));
  DsSlotDone done;

  (void) data;
  play_frames (b, 1, TRUE, NULL, 0);
  g_assert_true (ds_slot_book_end (b, NULL, &done));
  g_assert_cmpstr (done.error, ==, "no video frames decoded");
  g_assert_cmpuint (done.frames, ==, 0);
  ds_slot_done_clear (&done);

  play_frames (b, 2, TRUE, o, 0);
  b->out.errsv = ENOSPC;
  g_assert_true (ds_slot_book_end (b, "not a video", &done));
  g_assert_cmpstr (done.error, ==, "not a video");
  ds_slot_done_clear (&done);

  play_frames (b, 3, TRUE, o, 2);
  b->out.errsv = ENOSPC; /* as a failed write leaves it */
  g_assert_true (ds_slot_book_end (b, NULL, &done));
  g_assert_cmpstr (done.error, ==, want);
  g_assert_cmpuint (done.frames, ==, 2);
  ds_slot_done_clear (&done);

  play_frames (b, 4, TRUE, o, 1);
  g_assert_true (ds_slot_book_end (b, NULL, &done));
  g_assert_null (done.error);
  ds_slot_done_clear (&done);
  g_free (want);
  g_free (o);
}

/* stop: any phase → idle now, output closed, camera count restarted; idle: nothing was
 * playing. */
static void
test_stop (Fixture *f, gconstpointer data)
{
  DsSlotBook *b = &f->b;
  gchar *o = g_build_filename (f->dir, "o.txt", NULL);
  DsStopResult res;
  guint64 gen;

  (void) data;
  ds_slot_book_stop (b, &res);
  g_assert_false (res.was_playing);
  play_frames (b, 5, FALSE, o, 4);
  gen = b->generation;
  ds_slot_book_stop (b, &res);
  g_assert_true (res.was_playing);
  g_assert_cmpint (res.file_id, ==, 5);
  g_assert_cmpuint (res.frames, ==, 4);
  g_assert_cmpuint (b->generation, !=, gen);
  g_assert_cmpint (b->phase, ==, DS_SLOT_PHASE_IDLE);
  g_assert_null (b->out.file);
  g_assert_cmpuint (b->camera_frames, ==, 0);
  /* A draining file stops too, without its end. */
  play_frames (b, 6, FALSE, NULL, 1);
  g_assert_true (ds_slot_book_drain (b, "boom"));
  ds_slot_book_stop (b, &res);
  g_assert_true (res.was_playing);
  g_assert_null (b->end_error);
  g_assert_true (ds_slot_book_reset (b, NULL));
  g_free (o);
}

/* An output that cannot be opened leaves the slot idle; one that failed to be written
 * turns the end into a failure, and the slot is idle all the same. */
static void
test_output_failure (Fixture *f, gconstpointer data)
{
  DsSlotBook *b = &f->b;
  DsSlotDone done;
  GError *err = NULL;
  gchar *bad = g_build_filename (f->dir, "no-such-dir", "o.txt", NULL);
  gchar *o = g_build_filename (f->dir, "o.txt", NULL);
  gchar *want;
  guint64 gen;

  (void) data;
  gen = b->generation;
  g_assert_false (ds_slot_book_begin (b, 1, TRUE, bad, &err));
  g_assert_error (err, DS_SLOT_ERROR, DS_SLOT_ERROR_OUTPUT);
  g_clear_error (&err);
  g_assert_cmpint (b->phase, ==, DS_SLOT_PHASE_IDLE);
  g_assert_false (b->has_file);
  g_assert_cmpuint (b->generation, ==, gen);

  play_frames (b, 2, TRUE, o, 2);
  b->out.errsv = ENOSPC; /* as a failed write leaves it */
  gen = b->generation;
  g_assert_true (ds_slot_book_end (b, NULL, &done));
  want = g_strdup_printf ("cannot write output %s: %s", o, g_strerror (ENOSPC));
  g_assert_cmpstr (done.error, ==, want);
  ds_slot_done_clear (&done);
  g_free (want);
  g_assert_cmpint (b->phase, ==, DS_SLOT_PHASE_IDLE);
  g_assert_cmpuint (b->generation, !=, gen);
  g_assert_null (b->out.file);

  /* The next file starts clean. */
  play_frames (b, 3, FALSE, o, 1);
  g_assert_true (ds_slot_book_end (b, NULL, &done));
  g_assert_null (done.error);
  ds_slot_done_clear (&done);
  g_free (bad);
  g_free (o);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/slot-book/" name, Fixture, NULL, fixture_setup, fn, \
      fixture_teardown)
  ADD ("phases", test_phases);
  ADD ("busy", test_busy);
  ADD ("end-texts", test_end_texts);
  ADD ("stop", test_stop);
  ADD ("output-failure", test_output_failure);
#undef ADD
  return g_test_run ();
}
