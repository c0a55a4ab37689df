/* Unit tests of ds-gst-engine's GStreamer-free parts: its per-file output lines (on the
 * shared slot book, test-slot-book.c) and its config. The output file itself is tested
 * with the slot core (test-slot-core.c). */
#include <glib.h>
#include <glib/gstdio.h>

#include "ds-config.h"
#include "ds-gst-output.h"
#include "ds-test-tmp.h"

typedef struct {
  gchar *dir;
} TmpDir;

static void
tmp_setup (TmpDir *t, gconstpointer data)
{
  (void) data;
  t->dir = ds_test_tmp_new ("ds-core-XXXXXX");
}

static void
tmp_teardown (TmpDir *t, gconstpointer data)
{
  (void) data;
  ds_test_tmp_free (t->dir);
}

static void
play_file (DsSlotBook *b, gint64 file_id, gboolean new_camera, const gchar *out, guint n)
{
  GError *err = NULL;

  g_assert_true (ds_slot_book_begin (b, file_id, new_camera, out, &err));
  g_assert_no_error (err);
  for (guint i = 0; i < n; i++)
    g_assert_cmpint (ds_gst_output_frame (b, 1000 + i * 33, i * 33, 5000 + i), ==,
        i == 0 ? DS_SLOT_FRAME_FIRST : DS_SLOT_FRAME_COUNTED);
}

/* The end of a file that ends cleanly. */
static void
end_file (DsSlotBook *b)
{
  DsSlotDone done;

  g_assert_true (ds_slot_book_end (b, NULL, &done));
  g_assert_null (done.error);
  ds_slot_done_clear (&done);
}

/* One line per frame: the camera index continues across a camera's files, the file index
 * restarts with every file; the book counts alongside. */
static void
test_output_camera_continuity (TmpDir *t, gconstpointer data)
{
  DsSlotBook b;
  DsSlotProgress p;
  gchar *o1 = g_build_filename (t->dir, "1.txt", NULL);
  gchar *o2 = g_build_filename (t->dir, "2.txt", NULL);
  gchar *o3 = g_build_filename (t->dir, "3.txt", NULL);
  gchar *text;
  guint64 gen;

  (void) data;
  ds_slot_book_init (&b, 0);
  play_file (&b, 1, TRUE, o1, 3);
  ds_slot_book_progress (&b, &p);
  g_assert_cmpint (p.state, ==, DS_SLOT_PLAYING);
  g_assert_cmpint (p.file_id, ==, 1);
  g_assert_cmpint (p.position_ns, ==, 66);
  g_assert_cmpuint (p.frames, ==, 3);
  g_assert_cmpint (b.first_mono_ns, ==, 5000);
  g_assert_cmpint (b.last_mono_ns, ==, 5002);
  gen = b.generation;
  end_file (&b);
  g_assert_cmpuint (b.generation, !=, gen);
  /* Idle: frames are ignored and not written, the last file's count stays visible. */
  g_assert_cmpint (ds_gst_output_frame (&b, 1, 1, 1), ==, DS_SLOT_FRAME_IGNORED);
  ds_slot_book_progress (&b, &p);
  g_assert_cmpint (p.state, ==, DS_SLOT_IDLE);
  g_assert_cmpuint (p.frames, ==, 3);
  g_assert_cmpuint (p.camera_frames, ==, 3);

  /* Same camera: the camera index continues; the file index restarts. */
  play_file (&b, 2, FALSE, o2, 2);
  end_file (&b);
  g_assert_cmpuint (b.camera_frames, ==, 5);
  /* New camera: restart at 0. */
  play_file (&b, 3, TRUE, o3, 1);
  end_file (&b);

  text = ds_test_read_file (o1);
  g_assert_cmpstr (text, ==, "0 0 1000\n1 1 1033\n2 2 1066\n");
  g_free (text);
  text = ds_test_read_file (o2);
  g_assert_cmpstr (text, ==, "3 0 1000\n4 1 1033\n");
  g_free (text);
  text = ds_test_read_file (o3);
  g_assert_cmpstr (text, ==, "0 0 1000\n");
  g_free (text);
  ds_slot_book_clear (&b);
  g_free (o1);
  g_free (o2);
  g_free (o3);
}

/* After a stop or a reset the camera index restarts; an unknown PTS is written as -1. */
static void
test_output_stop_and_reset (TmpDir *t, gconstpointer data)
{
  DsSlotBook b;
  DsStopResult res;
  gchar *o = g_build_filename (t->dir, "o.txt", NULL);
  gchar *text;

  (void) data;
  ds_slot_book_init (&b, 0);
  play_file (&b, 1, FALSE, NULL, 4);
  ds_slot_book_stop (&b, &res);
  g_assert_true (res.was_playing);
  g_assert_cmpuint (b.camera_frames, ==, 0);
  play_file (&b, 2, FALSE, NULL, 2);
  end_file (&b);
  g_assert_true (ds_slot_book_reset (&b, NULL));
  g_assert_cmpuint (b.camera_frames, ==, 0);
  g_assert_true (ds_slot_book_begin (&b, 3, FALSE, o, NULL));
  ds_gst_output_frame (&b, -1, -1, 1);
  end_file (&b);
  text = ds_test_read_file (o);
  g_assert_cmpstr (text, ==, "0 0 -1\n");
  g_free (text);
  ds_slot_book_clear (&b);
  g_free (o);
}

static DsConfig *
load_text (TmpDir *t, const gchar *text, GError **err)
{
  gchar *p = g_build_filename (t->dir, "cfg.txt", NULL);
  DsConfig *c;

  g_assert_true (g_file_set_contents (p, text, -1, NULL));
  c = ds_config_load (p, err);
  g_free (p);
  return c;
}

static void
test_config (TmpDir *t, gconstpointer data)
{
  GError *err = NULL;
  DsConfig *c;
  gchar *cwd, *expected;

  (void) data;
  c = load_text (t,
      "[application]\nenable-perf-measurement=1\n"
      "[source0]\nenable=1\ntype=3\nnum-sources=2\ngpu-id=1\n"
      "[source1]\nenable=0\ntype=3\nnum-sources=5\ngpu-id=7\n"
      "[source2]\nenable=1\ntype=4\nuri=rtsp://x\n"
      "[source3]\ntype=3\nnum-sources=4\n"
      "[sourcefoo]\nenable=1\n"
      "[streammux]\ngpu-id=1\n[primary-gie]\nenable=1\ngpu-id=0\n"
      "[tracker]\nenable=0\ngpu-id=3\n", &err);
  g_assert_no_error (err);
  g_assert_cmpuint (c->n_slots, ==, 3);
  g_assert_cmpuint (c->gpu_ids->len, ==, 2);
  g_assert_cmpint (g_array_index (c->gpu_ids, gint, 0), ==, 0);
  g_assert_cmpint (g_array_index (c->gpu_ids, gint, 1), ==, 1);
  expected = g_build_filename (t->dir, "cfg.txt", NULL);
  g_assert_cmpstr (c->path, ==, expected);
  g_free (expected);
  ds_config_free (c);

  /* A relative path is reported absolute; no gpu-id means [0]. */
  cwd = g_get_current_dir ();
  g_assert_cmpint (g_chdir (t->dir), ==, 0);
  g_assert_true (g_file_set_contents ("rel.txt", "[source0]\nenable=1\ntype=2\n", -1, NULL));
  c = ds_config_load ("rel.txt", &err);
  g_assert_no_error (err);
  g_assert_cmpuint (c->n_slots, ==, 1);
  g_assert_true (g_path_is_absolute (c->path));
  g_assert_true (g_str_has_suffix (c->path, "/rel.txt"));
  g_assert_cmpuint (c->gpu_ids->len, ==, 1);
  g_assert_cmpint (g_array_index (c->gpu_ids, gint, 0), ==, 0);
  ds_config_free (c);
  g_assert_cmpint (g_chdir (cwd), ==, 0);
  g_free (cwd);

  /* Refused. */
  static const gchar *bad[] = {
    "[source0]\nenable=0\n",                           /* nothing enabled */
    "[application]\n",                                 /* no source */
    "[source0]\nenable=yes\n",                         /* not an integer */
    "[source0]\nenable=1\ntype=3\nnum-sources=0\n",    /* empty multi source */
    "[source0]\nenable=1\ntype=3\nnum-sources=x\n",
    "[source0]\nenable=1\ngpu-id=-1\n",
    "[source0]\nenable=1\ngpu-id=zero\n",
    "not a key file\n",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    c = load_text (t, bad[i], &err);
    g_assert_null (c);
    g_assert_nonnull (err);
    g_clear_error (&err);
  }
  c = ds_config_load ("/nonexistent/cfg.txt", &err);
  g_assert_null (c);
  g_assert_error (err, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_clear_error (&err);
}

/* The live-source keys, per slot: a type=3 group gives its options to all its slots. */
static void
test_config_live (TmpDir *t, gconstpointer data)
{
  GError *err = NULL;
  DsConfig *c;

  (void) data;
  c = load_text (t,
      "[source0]\nenable=1\ntype=3\nnum-sources=2\nselect-rtp-protocol=0\nlatency=250\n"
      "rtsp-reconnect-interval-sec=3\nrtsp-reconnect-attempts=4\nlive-stall-sec=2\n"
      "[source1]\nenable=1\ntype=2\n", &err);
  g_assert_no_error (err);
  g_assert_cmpuint (c->n_slots, ==, 3);
  for (guint i = 0; i < 2; i++) {
    g_assert_cmpint (c->live[i].rtp_protocols, ==, 0);
    g_assert_cmpint (c->live[i].latency_ms, ==, 250);
    g_assert_cmpint (c->live[i].retry_ms, ==, 3000);
    g_assert_cmpint (c->live[i].attempts, ==, 4);
    g_assert_cmpint (c->live[i].stall_ms, ==, 2000);
  }
  /* The defaults: TCP, 100 ms, 1 s, forever, 5 s. */
  g_assert_cmpint (c->live[2].rtp_protocols, ==, 4);
  g_assert_cmpint (c->live[2].latency_ms, ==, 100);
  g_assert_cmpint (c->live[2].retry_ms, ==, 1000);
  g_assert_cmpint (c->live[2].attempts, ==, -1);
  g_assert_cmpint (c->live[2].stall_ms, ==, 5000);
  ds_config_free (c);

  static const gchar *bad[] = {
    "[source0]\nenable=1\nselect-rtp-protocol=2\n",
    "[source0]\nenable=1\nlatency=-1\n",
    "[source0]\nenable=1\nrtsp-reconnect-attempts=-2\n",
    "[source0]\nenable=1\nrtsp-reconnect-interval-sec=x\n",
    "[source0]\nenable=1\nlive-stall-sec=0\n",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    c = load_text (t, bad[i], &err);
    g_assert_null (c);
    g_assert_error (err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
    g_assert_true (g_str_has_prefix (err->message, "[source0] "));
    g_clear_error (&err);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/output/camera-continuity", TmpDir, NULL, tmp_setup,
      test_output_camera_continuity, tmp_teardown);
  g_test_add ("/output/stop-and-reset", TmpDir, NULL, tmp_setup, test_output_stop_and_reset,
      tmp_teardown);
  g_test_add ("/config/load", TmpDir, NULL, tmp_setup, test_config, tmp_teardown);
  g_test_add ("/config/live", TmpDir, NULL, tmp_setup, test_config_live, tmp_teardown);
  return g_test_run ();
}
