/* Unit tests of ds-gst-engine's GStreamer-free parts: slot bookkeeping and config. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "ds-config.h"
#include "ds-slot-book.h"

typedef struct {
  gchar *dir;
} TmpDir;

static void
tmp_setup (TmpDir *t, gconstpointer data)
{
  (void) data;
  t->dir = g_dir_make_tmp ("ds-core-XXXXXX", NULL);
  g_assert_nonnull (t->dir);
}

static void
tmp_teardown (TmpDir *t, gconstpointer data)
{
  GDir *d = g_dir_open (t->dir, 0, NULL);
  const gchar *name;

  (void) data;
  while ((name = g_dir_read_name (d)) != NULL) {
    gchar *p = g_build_filename (t->dir, name, NULL);
    g_unlink (p);
    g_free (p);
  }
  g_dir_close (d);
  g_rmdir (t->dir);
  g_free (t->dir);
}

static gchar *
read_file (const gchar *path)
{
  gchar *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

static void
play_file (DsSlotBook *b, gint64 file_id, gboolean new_camera, const gchar *out, guint n)
{
  GError *err = NULL;

  g_assert_true (ds_slot_book_begin (b, file_id, new_camera, out, &err));
  g_assert_no_error (err);
  for (guint i = 0; i < n; i++)
    g_assert_true (ds_slot_book_frame (b, 1000 + i * 33, i * 33, 5000 + i) == (i == 0));
}

static void
test_book_camera_continuity (TmpDir *t, gconstpointer data)
{
  DsSlotBook b;
  DsSlotProgress p;
  GError *err = NULL;
  gchar *o1 = g_build_filename (t->dir, "1.txt", NULL);
  gchar *o2 = g_build_filename (t->dir, "2.txt", NULL);
  gchar *o3 = g_build_filename (t->dir, "3.txt", NULL);
  gchar *text;
  guint64 gen;

  (void) data;
  ds_slot_book_init (&b);
  play_file (&b, 1, TRUE, o1, 3);
  ds_slot_book_progress (&b, &p);
  g_assert_cmpint (p.state, ==, DS_SLOT_PLAYING);
  g_assert_cmpint (p.file_id, ==, 1);
  g_assert_cmpint (p.position_ns, ==, 66);
  g_assert_cmpuint (p.frames, ==, 3);
  g_assert_cmpint (b.first_mono_ns, ==, 5000);
  g_assert_cmpint (b.last_mono_ns, ==, 5002);
  gen = b.generation;
  g_assert_true (ds_slot_book_end (&b, FALSE, &err));
  g_assert_cmpuint (b.generation, !=, gen);
  /* Idle: frames are ignored, the last file's count stays visible. */
  g_assert_false (ds_slot_book_frame (&b, 1, 1, 1));
  ds_slot_book_progress (&b, &p);
  g_assert_cmpint (p.state, ==, DS_SLOT_IDLE);
  g_assert_cmpuint (p.frames, ==, 3);
  g_assert_cmpuint (p.camera_frames, ==, 3);

  /* Same camera: the camera index continues; the file index restarts. */
  play_file (&b, 2, FALSE, o2, 2);
  g_assert_true (ds_slot_book_end (&b, FALSE, NULL));
  g_assert_cmpuint (b.camera_frames, ==, 5);
  /* New camera: restart at 0. */
  play_file (&b, 3, TRUE, o3, 1);
  g_assert_true (ds_slot_book_end (&b, FALSE, NULL));

  text = read_file (o1);
  g_assert_cmpstr (text, ==, "0 0 1000\n1 1 1033\n2 2 1066\n");
  g_free (text);
  text = read_file (o2);
  g_assert_cmpstr (text, ==, "3 0 1000\n4 1 1033\n");
  g_free (text);
  text = read_file (o3);
  g_assert_cmpstr (text, ==, "0 0 1000\n");
  g_free (text);
  ds_slot_book_clear (&b);
  g_free (o1);
  g_free (o2);
  g_free (o3);
}

static void
test_book_stop_and_reset (TmpDir *t, gconstpointer data)
{
  DsSlotBook b;
  gchar *o = g_build_filename (t->dir, "o.txt", NULL);
  gchar *text;

  (void) data;
  ds_slot_book_init (&b);
  play_file (&b, 1, FALSE, NULL, 4);
  g_assert_true (ds_slot_book_end (&b, TRUE, NULL)); /* stop: camera reset */
  g_assert_cmpuint (b.camera_frames, ==, 0);
  play_file (&b, 2, FALSE, NULL, 2);
  g_assert_true (ds_slot_book_end (&b, FALSE, NULL));
  ds_slot_book_reset_camera (&b);
  g_assert_cmpuint (b.camera_frames, ==, 0);
  /* Unknown PTS is written as -1; an existing output file is truncated. */
  g_assert_true (g_file_set_contents (o, "old content that must go\n", -1, NULL));
  g_assert_true (ds_slot_book_begin (&b, 3, FALSE, o, NULL));
  ds_slot_book_frame (&b, -1, -1, 1);
  g_assert_true (ds_slot_book_end (&b, FALSE, NULL));
  text = read_file (o);
  g_assert_cmpstr (text, ==, "0 0 -1\n");
  g_free (text);
  ds_slot_book_clear (&b);
  g_free (o);
}

static void
test_book_bad_output (TmpDir *t, gconstpointer data)
{
  DsSlotBook b;
  GError *err = NULL;
  gchar *o = g_build_filename (t->dir, "no-such-dir", "o.txt", NULL);

  (void) data;
  ds_slot_book_init (&b);
  g_assert_false (ds_slot_book_begin (&b, 1, TRUE, o, &err));
  g_assert_error (err, G_FILE_ERROR, G_FILE_ERROR_NOENT);
  g_assert_nonnull (strstr (err->message, "cannot open output"));
  g_clear_error (&err);
  g_assert_cmpint (b.state, ==, DS_SLOT_IDLE);
  ds_slot_book_clear (&b);
  g_free (o);
}

/* An output that takes the open but not the data (here: over the file size limit, the
 * writes fail with EFBIG): the end reports it. */
static void
test_book_write_failure (TmpDir *t, gconstpointer data)
{
  DsSlotBook b;
  GError *err = NULL;
  gchar *o = g_build_filename (t->dir, "big.txt", NULL);
  struct rlimit old, small;
  void (*old_handler) (int);

  (void) data;
  ds_slot_book_init (&b);
  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &old), ==, 0);
  small = old;
  small.rlim_cur = 4096;
  old_handler = signal (SIGXFSZ, SIG_IGN);
  g_assert_true (ds_slot_book_begin (&b, 2, TRUE, o, NULL));
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &small), ==, 0);
  for (guint i = 0; i < 10000; i++)
    ds_slot_book_frame (&b, i, i, i);
  g_assert_false (ds_slot_book_end (&b, FALSE, &err));
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &old), ==, 0);
  signal (SIGXFSZ, old_handler);
  g_assert_error (err, G_FILE_ERROR, G_FILE_ERROR_IO);
  g_clear_error (&err);
  ds_slot_book_clear (&b);
  g_free (o);
}

/* Opening a FIFO for writing blocks until a reader comes, on the main loop: anything
 * but a regular file is refused at once, and nothing is truncated before the check. */
static void
test_book_output_not_regular (TmpDir *t, gconstpointer data)
{
  DsSlotBook b;
  GError *err = NULL;
  gchar *fifo = g_build_filename (t->dir, "fifo", NULL);
  gchar *reg = g_build_filename (t->dir, "o.txt", NULL);
  const gchar *paths[] = { fifo, "/dev/null", t->dir, fifo };
  int reader = -1;
  struct stat st;

  (void) data;
  ds_slot_book_init (&b);
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++) {
    gchar *want = g_strdup_printf ("cannot open output %s: not a regular file", paths[i]);

    if (i == 3) { /* a FIFO with a reader opens without blocking: still refused */
      reader = open (fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      g_assert_cmpint (reader, >=, 0);
    }
    g_assert_false (ds_slot_book_begin (&b, 1, TRUE, paths[i], &err));
    g_assert_nonnull (err);
    g_assert_cmpstr (err->message, ==, want);
    g_clear_error (&err);
    g_assert_cmpint (b.state, ==, DS_SLOT_IDLE);
    g_free (want);
  }
  close (reader);

  /* A regular file: truncated, blocking, not inherited by child processes. */
  g_assert_true (g_file_set_contents (reg, "old content\n", -1, NULL));
  g_assert_true (ds_slot_book_begin (&b, 2, TRUE, reg, NULL));
  g_assert_cmpint (fcntl (fileno (b.out), F_GETFD) & FD_CLOEXEC, !=, 0);
  g_assert_cmpint (fcntl (fileno (b.out), F_GETFL) & O_NONBLOCK, ==, 0);
  g_assert_cmpint (g_stat (reg, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, 0);
  g_assert_true (ds_slot_book_end (&b, FALSE, NULL));
  ds_slot_book_clear (&b);
  g_free (fifo);
  g_free (reg);
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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/book/camera-continuity", TmpDir, NULL, tmp_setup,
      test_book_camera_continuity, tmp_teardown);
  g_test_add ("/book/stop-and-reset", TmpDir, NULL, tmp_setup, test_book_stop_and_reset,
      tmp_teardown);
  g_test_add ("/book/bad-output", TmpDir, NULL, tmp_setup, test_book_bad_output, tmp_teardown);
  g_test_add ("/book/write-failure", TmpDir, NULL, tmp_setup, test_book_write_failure,
      tmp_teardown);
  g_test_add ("/book/output-not-regular", TmpDir, NULL, tmp_setup,
      test_book_output_not_regular, tmp_teardown);
  g_test_add ("/config/load", TmpDir, NULL, tmp_setup, test_config, tmp_teardown);
  return g_test_run ();
}
