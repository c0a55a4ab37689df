/* Unit tests of the slot core both engines share: the per-file output, the
 * generation-tagged main-loop calls, the error domain, and the GStreamer side (which slot
 * an element belongs to, bus error texts) against real elements. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <gst/gst.h>

#include "ds-live.h"
#include "ds-path-check.h"
#include "ds-slot-config.h"
#include "ds-slot-core.h"
#include "ds-slot-output.h"
#include "ds-slot-gst.h"
#include "ds-test-tmp.h"

typedef struct {
  gchar *dir;
  DsSlotOutput out;
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  (void) data;
  f->dir = ds_test_tmp_new ("ds-slot-core-XXXXXX"); /* f->out: zeroed, a closed output */
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  (void) data;
  ds_slot_output_clear (&f->out);
  ds_test_tmp_free (f->dir);
}

/* ---------- per-file output ---------- */

static void
test_output_lines (Fixture *f, gconstpointer data)
{
  gchar *p1 = g_build_filename (f->dir, "1.txt", NULL);
  gchar *p2 = g_build_filename (f->dir, "2.txt", NULL);
  gchar *text;
  struct stat st;

  (void) data;
  /* No path: nothing opened, nothing to report. */
  g_assert_true (ds_slot_output_open (&f->out, NULL, NULL));
  g_assert_true (ds_slot_output_open (&f->out, "", NULL));
  g_assert_false (ds_slot_output_writable (&f->out));
  g_assert_false (ds_slot_output_printf (&f->out, "%d\n", 1));
  g_assert_true (ds_slot_output_close (&f->out, NULL));

  /* An existing file is truncated; the descriptor blocks and is not inherited. */
  g_assert_true (g_file_set_contents (p1, "old content that must go\n", -1, NULL));
  g_assert_true (ds_slot_output_open (&f->out, p1, NULL));
  g_assert_cmpint (g_stat (p1, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, 0);
  g_assert_cmpint (fcntl (fileno (f->out.file), F_GETFD) & FD_CLOEXEC, !=, 0);
  g_assert_cmpint (fcntl (fileno (f->out.file), F_GETFL) & O_NONBLOCK, ==, 0);
  g_assert_true (ds_slot_output_writable (&f->out));
  g_assert_true (ds_slot_output_printf (&f->out, "%d %s\n", 0, "a"));
  g_assert_true (ds_slot_output_write (&f->out, "1 b\n", 4));
  g_assert_true (ds_slot_output_close (&f->out, NULL));
  g_assert_false (ds_slot_output_writable (&f->out));
  g_assert_true (ds_slot_output_close (&f->out, NULL)); /* twice: nothing to do */
  text = ds_test_read_file (p1);
  g_assert_cmpstr (text, ==, "0 a\n1 b\n");
  g_free (text);

  /* The next file replaces the path; an open one is closed first. */
  g_assert_true (ds_slot_output_open (&f->out, p1, NULL));
  g_assert_true (ds_slot_output_open (&f->out, p2, NULL));
  g_assert_cmpstr (f->out.path, ==, p2);
  g_assert_true (ds_slot_output_write (&f->out, "x\n", 2));
  g_assert_true (ds_slot_output_close (&f->out, NULL));
  text = ds_test_read_file (p2);
  g_assert_cmpstr (text, ==, "x\n");
  g_free (text);
  g_free (p1);
  g_free (p2);
}

/* Opening a FIFO for writing blocks until a reader comes, on the main loop: anything but
 * a regular file is refused at once, and a failed open leaves the output as it was. */
static void
test_output_refused (Fixture *f, gconstpointer data)
{
  gchar *fifo = g_build_filename (f->dir, "fifo", NULL);
  gchar *missing = g_build_filename (f->dir, "no-such-dir", "o.txt", NULL);
  gchar *reg = g_build_filename (f->dir, "o.txt", NULL);
  const gchar *paths[] = { fifo, "/dev/null", f->dir, fifo };
  GError *err = NULL;
  gchar *want;
  int reader = -1;
  struct stat st;

  (void) data;
  g_assert_true (ds_slot_output_open (&f->out, reg, NULL));
  g_assert_true (ds_slot_output_close (&f->out, NULL));
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++) {
    want = g_strdup_printf ("cannot open output %s: not a regular file", paths[i]);
    if (i == 3) { /* a FIFO with a reader opens without blocking: still refused */
      reader = open (fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      g_assert_cmpint (reader, >=, 0);
    }
    g_assert_false (ds_slot_output_open (&f->out, paths[i], &err));
    g_assert_error (err, DS_SLOT_ERROR, DS_SLOT_ERROR_OUTPUT);
    g_assert_cmpstr (err->message, ==, want);
    g_clear_error (&err);
    g_free (want);
    g_assert_null (f->out.file);
    g_assert_cmpstr (f->out.path, ==, reg);
  }
  close (reader);
  /* /dev/null was not truncated or changed into anything else. */
  g_assert_cmpint (g_stat ("/dev/null", &st), ==, 0);
  g_assert_true (S_ISCHR (st.st_mode));

  g_assert_false (ds_slot_output_open (&f->out, missing, &err));
  want = g_strdup_printf ("cannot open output %s: %s", missing, g_strerror (ENOENT));
  g_assert_error (err, DS_SLOT_ERROR, DS_SLOT_ERROR_OUTPUT);
  g_assert_cmpstr (err->message, ==, want);
  g_clear_error (&err);
  g_free (want);
  g_free (fifo);
  g_free (missing);
  g_free (reg);
}

/* An output that takes the open but not the data (over the file size limit the writes
 * fail with EFBIG): the first error is kept, nothing more is written, close reports it. */
static void
test_output_write_failure (Fixture *f, gconstpointer data)
{
  gchar *path = g_build_filename (f->dir, "big.txt", NULL);
  gchar line[100];
  struct rlimit old, small;
  void (*old_handler) (int);
  GError *err = NULL;
  gchar *want;
  guint written = 0;

  (void) data;
  memset (line, 'x', sizeof (line) - 1);
  line[sizeof (line) - 1] = '\n';
  g_assert_cmpint (getrlimit (RLIMIT_FSIZE, &old), ==, 0);
  small = old;
  small.rlim_cur = 4096;
  old_handler = signal (SIGXFSZ, SIG_IGN);
  g_assert_true (ds_slot_output_open (&f->out, path, NULL));
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &small), ==, 0);
  for (guint i = 0; i < 1000; i++) {
    if (ds_slot_output_write (&f->out, line, sizeof (line)))
      written++;
  }
  g_assert_false (ds_slot_output_writable (&f->out));
  g_assert_cmpint (f->out.errsv, ==, EFBIG);
  g_assert_false (ds_slot_output_printf (&f->out, "more\n"));
  g_assert_false (ds_slot_output_close (&f->out, &err));
  g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &old), ==, 0);
  signal (SIGXFSZ, old_handler);
  g_assert_cmpuint (written, <, 1000);
  want = g_strdup_printf ("cannot write output %s: %s", path, g_strerror (EFBIG));
  g_assert_error (err, DS_SLOT_ERROR, DS_SLOT_ERROR_OUTPUT);
  g_assert_cmpstr (err->message, ==, want);
  g_clear_error (&err);
  g_free (want);

  /* The next file starts clean. */
  g_assert_true (ds_slot_output_open (&f->out, path, NULL));
  g_assert_cmpint (f->out.errsv, ==, 0);
  g_assert_true (ds_slot_output_write (&f->out, "ok\n", 3));
  g_assert_true (ds_slot_output_close (&f->out, NULL));
  g_free (path);
}

/* ---------- main-loop calls ---------- */

typedef struct {
  GMainContext *context;
  GMutex lock;
  GPtrArray *seen;   /* "<kind>:<text>" per call run */
  GThread *ran_on;
} Calls;

static void
record_call (const DsSlotCall *call)
{
  Calls *c = call->owner;

  g_mutex_lock (&c->lock);
  g_ptr_array_add (c->seen, g_strdup_printf ("%d:%s@%u/%" G_GUINT64_FORMAT, call->kind,
      call->text != NULL ? call->text : "-", call->index, call->generation));
  c->ran_on = g_thread_self ();
  g_mutex_unlock (&c->lock);
}

static gpointer
queue_from_thread (gpointer data)
{
  Calls *c = data;

  ds_slot_call_queue (c->context, record_call, &(DsSlotCall) {
      .owner = c, .index = 2, .generation = 9, .kind = 3, .text = "thread" });
  return NULL;
}

static void
test_call_queue (void)
{
  Calls c = { 0 };
  gchar text[] = "eos";
  gchar *engine_wide = g_strdup_printf ("2:-@%u/0", DS_SLOT_NONE);
  GThread *t;

  c.context = g_main_context_new ();
  c.seen = g_ptr_array_new_with_free_func (g_free);
  g_mutex_init (&c.lock);

  /* Never inline; the text is the call's own copy; calls run in order. */
  ds_slot_call_queue (c.context, record_call, &(DsSlotCall) {
      .owner = &c, .index = 0, .generation = 4, .kind = 1, .text = text });
  ds_slot_call_queue (c.context, record_call, &(DsSlotCall) {
      .owner = &c, .index = DS_SLOT_NONE, .kind = 2 });
  text[0] = 'X';
  g_assert_cmpuint (c.seen->len, ==, 0);
  while (g_main_context_iteration (c.context, FALSE))
    ;
  g_assert_cmpuint (c.seen->len, ==, 2);
  g_assert_cmpstr (c.seen->pdata[0], ==, "1:eos@0/4");
  g_assert_cmpstr (c.seen->pdata[1], ==, engine_wide);
  g_assert_true (c.ran_on == g_thread_self ());

  /* From a streaming thread: runs on the context's thread, not the caller's. */
  t = g_thread_new ("queue", queue_from_thread, &c);
  g_thread_join (t);
  while (g_main_context_iteration (c.context, FALSE))
    ;
  g_assert_cmpuint (c.seen->len, ==, 3);
  g_assert_cmpstr (c.seen->pdata[2], ==, "3:thread@2/9");
  g_assert_true (c.ran_on == g_thread_self ());

  g_ptr_array_unref (c.seen);
  g_free (engine_wide);
  g_mutex_clear (&c.lock);
  g_main_context_unref (c.context);
}

/* ---------- input paths ---------- */

/* Runs the context until n answers were recorded (or 5 s passed). */
static void
await_calls (Calls *c, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (c->seen->len < n && g_get_monotonic_time () < deadline)
    g_main_context_iteration (c->context, TRUE);
  g_assert_cmpuint (c->seen->len, ==, n);
}

static void
test_path_check_local (Fixture *f, gconstpointer data)
{
  Calls c = { 0 };
  gchar *file = g_build_filename (f->dir, "clip.mp4", NULL);
  gchar *fifo = g_build_filename (f->dir, "clip.fifo", NULL);
  gchar *missing = g_build_filename (f->dir, "missing.mp4", NULL);
  const gchar *paths[] = { file, fifo, f->dir, missing, "/dev/null" };
  DsPathCheck *pc;

  (void) data;
  c.context = g_main_context_new ();
  c.seen = g_ptr_array_new_with_free_func (g_free);
  g_mutex_init (&c.lock);
  g_assert_true (g_file_set_contents (file, "x", 1, NULL));
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);

  pc = ds_path_check_new (c.context, 5000, ds_path_check_local, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++) {
    gchar *uri = g_filename_to_uri (paths[i], NULL, NULL);
    gchar *want = i == 0 || i == 3 ? g_strdup ("-") :
        g_strdup_printf ("not a regular file: %s", paths[i]);
    gchar *got;

    ds_path_check_start (pc, uri, record_call, &(DsSlotCall) {
        .owner = &c, .index = 1, .generation = i });
    g_assert_cmpuint (c.seen->len, ==, i); /* never inline */
    await_calls (&c, i + 1);
    got = g_strdup_printf ("0:%s@1/%u", want, i);
    g_assert_cmpstr (c.seen->pdata[i], ==, got);
    g_assert_true (c.ran_on == g_thread_self ());
    g_free (got);
    g_free (want);
    g_free (uri);
  }
  /* Not a local file: answered at once, no thread needed. */
  ds_path_check_start (pc, "rtsp://127.0.0.1/cam", record_call, &(DsSlotCall) {
      .owner = &c, .index = 1, .generation = 9 });
  await_calls (&c, G_N_ELEMENTS (paths) + 1);
  g_assert_cmpstr (c.seen->pdata[G_N_ELEMENTS (paths)], ==, "0:-@1/9");
  ds_path_check_free (pc);

  g_ptr_array_unref (c.seen);
  g_mutex_clear (&c.lock);
  g_main_context_unref (c.context);
  g_free (file);
  g_free (fifo);
  g_free (missing);
}

/* A check that blocks until released, as stat() on a hung mount does. */
typedef struct {
  GMutex lock;
  GCond cond;
  gboolean released;
  guint calls, returned;
  GThread *thread;      /* the worker seen by the last call */
  guint threads;        /* distinct workers seen */
} Blocker;

static gchar *
blocking_check (const gchar *path, gpointer data)
{
  Blocker *b = data;

  g_mutex_lock (&b->lock);
  b->calls++;
  if (b->thread != g_thread_self ())
    b->threads++;
  b->thread = g_thread_self ();
  g_cond_broadcast (&b->cond);
  while (!b->released && g_str_has_prefix (path, "/blocked"))
    g_cond_wait (&b->cond, &b->lock);
  b->returned++;
  g_cond_broadcast (&b->cond);
  g_mutex_unlock (&b->lock);
  return g_str_has_suffix (path, ".fifo") ? g_strdup ("not a regular file") : NULL;
}

/* Waits until the check was entered `calls` times and left `returned` times. */
static void
await_blocker (Blocker *b, guint calls, guint returned)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  g_mutex_lock (&b->lock);
  while ((b->calls < calls || b->returned < returned)
      && g_cond_wait_until (&b->cond, &b->lock, deadline))
    ;
  g_assert_cmpuint (b->calls, ==, calls);
  g_assert_cmpuint (b->returned, ==, returned);
  g_mutex_unlock (&b->lock);
}

static void
release (Blocker *b, gboolean released)
{
  g_mutex_lock (&b->lock);
  b->released = released;
  g_cond_broadcast (&b->cond);
  g_mutex_unlock (&b->lock);
}

static void
test_path_check_deadline (void)
{
  Calls c = { 0 };
  Blocker b = { 0 };
  DsPathCheck *pc;
  gint64 t0, took;

  c.context = g_main_context_new ();
  c.seen = g_ptr_array_new_with_free_func (g_free);
  g_mutex_init (&c.lock);
  g_mutex_init (&b.lock);
  g_cond_init (&b.cond);
  pc = ds_path_check_new (c.context, 100, blocking_check, &b);

  /* Stuck in the "kernel": the deadline answers, on time. */
  t0 = g_get_monotonic_time ();
  ds_path_check_start (pc, "file:///blocked/a.mp4", record_call, &(DsSlotCall) {
      .owner = &c, .generation = 1 });
  await_calls (&c, 1);
  took = g_get_monotonic_time () - t0;
  g_assert_cmpint (took, >=, 100000);
  g_assert_cmpint (took, <, 2000000);
  g_assert_cmpstr (c.seen->pdata[0], ==,
      "0:path did not answer within 100 ms: /blocked/a.mp4@0/1");

  /* The next check waits for the stuck worker within its own deadline: no second thread. */
  ds_path_check_start (pc, "file:///fine/b.mp4", record_call, &(DsSlotCall) {
      .owner = &c, .generation = 2 });
  await_calls (&c, 2);
  g_assert_cmpstr (c.seen->pdata[1], ==,
      "0:path did not answer within 100 ms: /fine/b.mp4@0/2");

  /* Released: the stale answer is dropped; the next check runs on the same worker. */
  release (&b, TRUE);
  await_blocker (&b, 1, 1);
  ds_path_check_start (pc, "file:///fine/c.fifo", record_call, &(DsSlotCall) {
      .owner = &c, .generation = 3 });
  await_calls (&c, 3);
  g_assert_cmpstr (c.seen->pdata[2], ==, "0:not a regular file@0/3");
  g_assert_cmpuint (b.threads, ==, 1);
  g_assert_cmpuint (b.calls, ==, 2); /* b.mp4 was answered by its deadline, never run */

  /* A new check replaces an unanswered one, which is never answered. */
  release (&b, FALSE);
  ds_path_check_start (pc, "file:///blocked/d.mp4", record_call, &(DsSlotCall) {
      .owner = &c, .generation = 4 });
  await_blocker (&b, 3, 2);
  ds_path_check_start (pc, "rtsp://127.0.0.1/e", record_call, &(DsSlotCall) {
      .owner = &c, .generation = 5 });
  await_calls (&c, 4);
  g_assert_cmpstr (c.seen->pdata[3], ==, "0:-@0/5");
  for (gint i = 0; i < 20; i++)
    g_main_context_iteration (c.context, FALSE);
  g_usleep (200000); /* d's deadline has passed: nothing more comes */
  while (g_main_context_iteration (c.context, FALSE))
    ;
  g_assert_cmpuint (c.seen->len, ==, 4);

  /* Freeing while the worker is stuck does not wait for it. */
  t0 = g_get_monotonic_time ();
  ds_path_check_free (pc);
  g_assert_cmpint (g_get_monotonic_time () - t0, <, 50000);
  release (&b, TRUE);
  await_blocker (&b, 3, 3);
  g_usleep (50000); /* the worker frees the rest on its way out */
  while (g_main_context_iteration (c.context, FALSE))
    ;
  g_assert_cmpuint (c.seen->len, ==, 4);

  g_ptr_array_unref (c.seen);
  g_mutex_clear (&c.lock);
  g_mutex_clear (&b.lock);
  g_cond_clear (&b.cond);
  g_main_context_unref (c.context);
}

enum { ST_IDLE, ST_PLAYING, ST_DRAINING };

static void
test_call_is_current (void)
{
  DsSlotCall call = { .generation = 7 };
  guint active = DS_SLOT_STATES (ST_PLAYING) | DS_SLOT_STATES (ST_DRAINING);

  g_assert_true (ds_slot_call_is_current (&call, 7, ST_PLAYING, active));
  g_assert_true (ds_slot_call_is_current (&call, 7, ST_DRAINING, active));
  g_assert_false (ds_slot_call_is_current (&call, 7, ST_IDLE, active));
  g_assert_false (ds_slot_call_is_current (&call, 8, ST_PLAYING, active)); /* a later file */
  g_assert_false (ds_slot_call_is_current (&call, 7, 40, G_MAXUINT));      /* no such state */
}

/* ---------- the GStreamer side ---------- */

static GstElement *
make (const gchar *factory, const gchar *name)
{
  GstElement *e = gst_element_factory_make (factory, name);

  g_assert_nonnull (e);
  return e;
}

static void
test_slot_of_object (void)
{
  GstElement *pipeline = make ("pipeline", NULL);
  GstElement *slot1 = make ("bin", "slot1");
  GstElement *inner = make ("bin", "inner");
  GstElement *deep = make ("identity", "deep");
  GstElement *sink1 = make ("fakesink", "sink1");
  GstElement *other = make ("identity", "other");
  GstPad *pad;

  gst_bin_add (GST_BIN (inner), deep);
  gst_bin_add (GST_BIN (slot1), inner);
  gst_bin_add_many (GST_BIN (pipeline), slot1, sink1, other, NULL);
  ds_slot_tag_element (slot1, 1);
  ds_slot_tag_element (sink1, 1);
  ds_slot_tag_element (deep, 0); /* the nearest tag wins */

  g_assert_cmpuint (ds_slot_of_object (GST_OBJECT (slot1)), ==, 1);
  g_assert_cmpuint (ds_slot_of_object (GST_OBJECT (inner)), ==, 1);
  g_assert_cmpuint (ds_slot_of_object (GST_OBJECT (deep)), ==, 0);
  g_assert_cmpuint (ds_slot_of_object (GST_OBJECT (sink1)), ==, 1);
  g_assert_cmpuint (ds_slot_of_object (GST_OBJECT (other)), ==, DS_SLOT_NONE);
  g_assert_cmpuint (ds_slot_of_object (GST_OBJECT (pipeline)), ==, DS_SLOT_NONE);
  g_assert_cmpuint (ds_slot_of_object (NULL), ==, DS_SLOT_NONE);
  pad = gst_element_get_static_pad (sink1, "sink"); /* a pad of a slot element */
  g_assert_cmpuint (ds_slot_of_object (GST_OBJECT (pad)), ==, 1);
  gst_object_unref (pad);
  gst_object_unref (pipeline);
}

static GstMessage *
error_message (const gchar *message, const gchar *debug)
{
  GError *err = g_error_new_literal (GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
      message);
  GstMessage *msg = gst_message_new_error (NULL, err, debug);

  g_error_free (err);
  return msg;
}

static void
test_error_text (void)
{
  static const struct {
    const gchar *message, *debug, *want;
  } cases[] = {
    /* The last line of the debug text names the cause; the location line goes. */
    { "Resource not found.",
      "gstfilesrc.c(532): gst_file_src_start (): /GstPipeline:p/GstFileSrc:src:\n"
      "No such file \"/x.mp4\"",
      "Resource not found: No such file \"/x.mp4\"" },
    { "Internal data stream error.", "gstqtdemux.c(1): f (): /p/demux:", /* location only */
      "Internal data stream error" },
    { "Not a video.", NULL, "Not a video" },
    { "Not a video", "", "Not a video" },
    { "Could not decode stream.", "line one\n", "Could not decode stream" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstMessage *msg = error_message (cases[i].message, cases[i].debug);
    gchar *text = ds_slot_error_text (msg);

    g_assert_cmpstr (text, ==, cases[i].want);
    g_free (text);
    gst_message_unref (msg);
  }
  {
    GstMessage *eos = gst_message_new_eos (NULL);
    g_assert_null (ds_slot_error_text (eos));
    gst_message_unref (eos);
  }
  g_assert_null (ds_slot_error_text (NULL));
}

/* A real element of a slot fails: the bus error names that slot and the missing path. */
static void
test_real_bus_error (Fixture *f, gconstpointer data)
{
  GstElement *pipeline = make ("pipeline", NULL);
  GstElement *slot = make ("bin", "slot2");
  GstElement *src = make ("filesrc", NULL);
  GstElement *sink = make ("fakesink", NULL);
  gchar *missing = g_build_filename (f->dir, "missing.mp4", NULL);
  gchar *want = g_strdup_printf ("Resource not found: No such file \"%s\"", missing);
  GstBus *bus;
  GstMessage *msg;
  gchar *text;

  (void) data;
  g_object_set (src, "location", missing, NULL);
  gst_bin_add (GST_BIN (slot), src);
  gst_bin_add_many (GST_BIN (pipeline), slot, sink, NULL);
  g_assert_true (gst_element_link (src, sink));
  ds_slot_tag_element (slot, 2);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PAUSED), ==,
      GST_STATE_CHANGE_FAILURE);
  bus = gst_element_get_bus (pipeline);
  msg = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND, GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  g_assert_cmpuint (ds_slot_of_object (GST_MESSAGE_SRC (msg)), ==, 2);
  text = ds_slot_error_text (msg);
  g_assert_cmpstr (text, ==, want);
  g_free (text);
  gst_message_unref (msg);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  g_free (missing);
  g_free (want);
}

/* ---------- live sources ---------- */

#define MS(x) ((gint64) (x) * G_GINT64_CONSTANT (1000000))

static void
test_live_uri (void)
{
  g_assert_true (ds_live_uri_is_live ("rtsp://127.0.0.1:8554/cam"));
  g_assert_true (ds_live_uri_is_live ("RTSPS://h/x"));
  g_assert_true (ds_live_uri_is_live ("http://h/x.mp4"));
  g_assert_true (ds_live_uri_is_live ("https://h/x"));
  g_assert_true (ds_live_uri_is_live ("udp://127.0.0.1:5000"));
  g_assert_false (ds_live_uri_is_live ("file:///x.mp4"));
  g_assert_false (ds_live_uri_is_live ("nonsense"));
  g_assert_false (ds_live_uri_is_live (NULL));
}

static void
test_live_backoff (void)
{
  static const gint64 want[] = { 1000, 2000, 4000, 8000, 16000, 30000, 30000 };
  DsLiveOptions opts;
  DsLive live;
  DsLiveLoss loss;
  DsLiveResume r;
  gboolean connecting;
  gint64 t = MS (1000);

  ds_live_options_init (&opts);
  ds_live_begin (&live, t);
  g_assert_false (ds_live_stalled (&live, &opts, t + MS (5000), &connecting));
  g_assert_true (ds_live_stalled (&live, &opts, t + MS (5001), &connecting));
  g_assert_true (connecting);
  /* The first connection fails, then every retry: 1 s doubling to 30 s, forever. */
  for (guint i = 0; i < G_N_ELEMENTS (want); i++) {
    ds_live_lost (&live, &opts, t, FALSE, &loss);
    g_assert_true (loss.will_retry);
    g_assert_cmpuint (loss.attempt, ==, i + 1);
    g_assert_cmpint (loss.retry_in_ms, ==, want[i]);
    g_assert_false (ds_live_stalled (&live, &opts, t + MS (60000), &connecting));
    g_assert_cmpint (ds_live_frame (&live, t, &r), ==, DS_LIVE_FRAME_DROP);
    t += MS (loss.retry_in_ms);
    ds_live_retry (&live, t);
  }
  /* Never played: resumed, but nothing to keep. */
  g_assert_cmpint (ds_live_frame (&live, t, &r), ==, DS_LIVE_FRAME_RESUMED);
  g_assert_cmpuint (r.attempts, ==, G_N_ELEMENTS (want));
  g_assert_false (r.tracker_kept);
  g_assert_cmpint (ds_live_frame (&live, t + MS (33), &r), ==, DS_LIVE_FRAME_COUNT);
  /* The next outage starts again at 1 s. */
  ds_live_lost (&live, &opts, t + MS (40), FALSE, &loss);
  g_assert_cmpint (loss.retry_in_ms, ==, 1000);
  g_assert_cmpuint (loss.attempt, ==, 1);
}

static void
test_live_resume_keeps_or_resets (void)
{
  DsLiveOptions opts;
  DsLive live;
  DsLiveLoss loss;
  DsLiveResume r;
  DsLiveProgress p;

  ds_live_options_init (&opts);
  ds_live_begin (&live, 0);
  ds_live_progress (&live, MS (10), &p);
  g_assert_cmpstr (p.state, ==, "connecting");
  g_assert_cmpint (p.last_frame_age_ms, ==, -1);
  for (gint i = 0; i < 90; i++) /* 3 s at 30 fps */
    g_assert_cmpint (ds_live_frame (&live, MS (100 + i * 1000 / 30), &r), ==,
        DS_LIVE_FRAME_COUNT);
  ds_live_progress (&live, MS (3100), &p);
  g_assert_cmpstr (p.state, ==, "playing");
  g_assert_cmpfloat_with_epsilon (p.fps, 30.0, 1.0);
  g_assert_cmpint (p.last_frame_age_ms, <, 40);
  /* Lost at 3.1 s, back 9.9 s after the last frame: kept. */
  ds_live_lost (&live, &opts, MS (3100), FALSE, &loss);
  ds_live_progress (&live, MS (3200), &p);
  g_assert_cmpstr (p.state, ==, "reconnecting");
  ds_live_retry (&live, MS (4100));
  g_assert_cmpint (ds_live_frame (&live, MS (12966), &r), ==, DS_LIVE_FRAME_RESUMED);
  g_assert_cmpint (r.down_ms, ==, 9900);
  g_assert_true (r.tracker_kept);
  /* A stall after that, back more than 10 s after the last frame: reset. */
  ds_live_lost (&live, &opts, MS (18000), FALSE, &loss);
  ds_live_retry (&live, MS (19000));
  ds_live_lost (&live, &opts, MS (19100), FALSE, &loss);
  g_assert_cmpint (loss.retry_in_ms, ==, 2000);
  ds_live_retry (&live, MS (21100));
  g_assert_cmpint (ds_live_frame (&live, MS (22967), &r), ==, DS_LIVE_FRAME_RESUMED);
  g_assert_cmpint (r.down_ms, ==, 10001);
  g_assert_cmpuint (r.attempts, ==, 2);
  g_assert_false (r.tracker_kept);
  ds_live_progress (&live, MS (23000), &p);
  g_assert_cmpuint (p.reconnects, ==, 2);
}

static void
test_live_gives_up (void)
{
  DsLiveOptions opts;
  DsLive live;
  DsLiveLoss loss;
  gchar *text;

  ds_live_options_init (&opts);
  opts.attempts = 1;
  ds_live_begin (&live, 0);
  ds_live_lost (&live, &opts, 0, FALSE, &loss);
  g_assert_true (loss.will_retry);
  g_assert_null (ds_live_loss_text ("end of stream", FALSE, &loss)); /* a re-play follows */
  ds_live_retry (&live, MS (1000));
  ds_live_lost (&live, &opts, MS (1000), FALSE, &loss);
  g_assert_false (loss.will_retry);
  g_assert_cmpuint (loss.attempt, ==, 1);
  g_assert_false (live.active);
  text = ds_live_loss_text ("end of stream", FALSE, &loss);
  g_assert_cmpstr (text, ==, "stream lost: end of stream (gave up after 1 attempts)");
  g_free (text);
  /* Refusals are final at once, however many retries are allowed. */
  opts.attempts = -1;
  ds_live_begin (&live, 0);
  ds_live_lost (&live, &opts, 0, TRUE, &loss);
  g_assert_false (loss.will_retry);
  g_assert_cmpuint (loss.attempt, ==, 0);
  text = ds_live_loss_text ("rtsp: not found (404)", TRUE, &loss);
  g_assert_cmpstr (text, ==, "rtsp: not found (404): not retried");
  g_free (text);
  /* rtsp-reconnect-interval-sec=0: no retry. */
  opts.retry_ms = 0;
  ds_live_begin (&live, 0);
  ds_live_lost (&live, &opts, 0, FALSE, &loss);
  g_assert_false (loss.will_retry);
  text = ds_live_refusal_text ("rtsp://h/x", 401);
  g_assert_cmpstr (text, ==, "rtsp: unauthorized (401)");
  g_free (text);
  text = ds_live_refusal_text ("rtsps://h/x", 403);
  g_assert_cmpstr (text, ==, "rtsp: forbidden (403)");
  g_free (text);
  text = ds_live_refusal_text ("https://h/x", 404);
  g_assert_cmpstr (text, ==, "http: not found (404)");
  g_free (text);
}

/* Both engines' words for a slot without frames: a file's watchdog, a live source's stall. */
static void
test_stall_text (void)
{
  gchar *text = ds_slot_stall_text (TRUE, 5000);

  g_assert_cmpstr (text, ==, "no video frame within 5000 ms");
  g_free (text);
  text = ds_slot_stall_text (FALSE, 2000);
  g_assert_cmpstr (text, ==, "stalled: no video frame for 2000 ms");
  g_free (text);
}

/* rtspsrc takes the slot's select-rtp-protocol and latency; other sources are untouched. */
static void
test_source_setup (void)
{
  GstElement *rtsp = gst_element_factory_make ("rtspsrc", NULL);
  GstElement *file = gst_element_factory_make ("filesrc", NULL);
  DsLiveOptions opts;
  guint protocols = 0, latency = 0;

  if (rtsp == NULL) {
    g_test_skip ("no rtspsrc");
    gst_object_unref (gst_object_ref_sink (file));
    return;
  }
  ds_live_options_init (&opts);
  opts.latency_ms = 250;
  ds_slot_on_source_setup (NULL, rtsp, &opts);
  g_object_get (rtsp, "protocols", &protocols, "latency", &latency, NULL);
  g_assert_cmpuint (protocols, ==, 4); /* TCP only */
  g_assert_cmpuint (latency, ==, 250);
  opts.rtp_protocols = 0;
  ds_slot_on_source_setup (NULL, rtsp, &opts);
  g_object_get (rtsp, "protocols", &protocols, NULL);
  g_assert_cmpuint (protocols, ==, 7); /* UDP, UDP multicast and TCP */
  ds_slot_on_source_setup (NULL, file, &opts); /* no such properties: nothing set */
  gst_object_unref (gst_object_ref_sink (rtsp));
  gst_object_unref (gst_object_ref_sink (file));
}

static void
test_live_refusal_of_message (void)
{
  struct { GQuark domain; gint code; const gchar *debug; gint want; } cases[] = {
    { GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED, "x.c(1): f (): /e:\nUnauthorized (401)", 401 },
    { GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED, NULL, 401 },
    { GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ, "x.c(1): f (): /e:\nForbidden (403)", 403 },
    { GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, "x.c(1): f (): /e:\nNot Found (404)", 404 },
    /* A missing file is NOT_FOUND without a status: not a refusal of a live source. */
    { GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, "No such file \"/x\"", 0 },
    { GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ_WRITE, "Failed to connect. (Generic error)", 0 },
    { GST_STREAM_ERROR, GST_STREAM_ERROR_DECODE, "(404)", 0 },
  };
  GstObject *src = GST_OBJECT (gst_element_factory_make ("fakesrc", NULL));

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GError *err = g_error_new_literal (cases[i].domain, cases[i].code, "boom");
    GstMessage *msg = gst_message_new_error (src, err, cases[i].debug);

    g_assert_cmpint (ds_slot_error_refusal (msg), ==, cases[i].want);
    gst_message_unref (msg);
    g_error_free (err);
  }
  gst_object_unref (gst_object_ref_sink (src));
}

/* The slots of a config as deepstream-app numbers its sources, each with its options. */
static void
test_config_sources (void)
{
  GKeyFile *kf = g_key_file_new ();
  GError *err = NULL;
  GArray *slots;

  g_assert_true (g_key_file_load_from_data (kf,
      "[application]\nenable-perf-measurement=1\n"
      "[source0]\nenable=1\ntype=3\nnum-sources=2\nlatency=1\n"
      "[source1]\nenable=0\ntype=2\nlatency=2\n"
      "[source2]\nenable=1\ntype=2\nlatency=3\n"
      "[source3]\ntype=2\n"                       /* no enable: off */
      "[source-list]\nenable=1\n[sourcefoo]\nenable=1\n[source4x]\nenable=1\n",
      -1, G_KEY_FILE_NONE, NULL));
  slots = ds_slot_config_sources (kf, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (slots->len, ==, 3);
  g_assert_cmpint (g_array_index (slots, DsLiveOptions, 0).latency_ms, ==, 1);
  g_assert_cmpint (g_array_index (slots, DsLiveOptions, 1).latency_ms, ==, 1);
  g_assert_cmpint (g_array_index (slots, DsLiveOptions, 2).latency_ms, ==, 3);
  g_array_unref (slots);

  g_assert_true (g_key_file_load_from_data (kf, "[source0]\nenable=yes\n", -1,
      G_KEY_FILE_NONE, NULL));
  g_assert_null (ds_slot_config_sources (kf, &err));
  g_assert_error (err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
  g_assert_true (g_str_has_prefix (err->message, "[source0] enable: "));
  g_clear_error (&err);

  g_assert_true (g_key_file_load_from_data (kf,
      "[source0]\nenable=1\ntype=3\nnum-sources=1000\n"
      "[source1]\nenable=1\ntype=3\nnum-sources=1000\n", -1, G_KEY_FILE_NONE, NULL));
  g_assert_null (ds_slot_config_sources (kf, &err));
  g_assert_error (err, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE);
  g_assert_cmpstr (err->message, ==, "2000 sources, at most 1024");
  g_clear_error (&err);

  g_assert_true (g_key_file_load_from_data (kf, "[application]\n", -1, G_KEY_FILE_NONE,
      NULL));
  slots = ds_slot_config_sources (kf, &err);
  g_assert_no_error (err);
  g_assert_cmpuint (slots->len, ==, 0);
  g_array_unref (slots);
  g_key_file_unref (kf);
}

static void
test_gpu_ids (void)
{
  const guint ids[] = { 1, 0, 1, 3, 0 };
  GArray *a = ds_slot_gpu_ids (ids, G_N_ELEMENTS (ids));

  g_assert_cmpuint (a->len, ==, 3);
  g_assert_cmpint (g_array_index (a, gint, 0), ==, 0);
  g_assert_cmpint (g_array_index (a, gint, 1), ==, 1);
  g_assert_cmpint (g_array_index (a, gint, 2), ==, 3);
  g_array_unref (a);
  a = ds_slot_gpu_ids (NULL, 0);
  g_assert_cmpuint (a->len, ==, 1);
  g_assert_cmpint (g_array_index (a, gint, 0), ==, 0);
  g_array_unref (a);
}

/* Read by AddressSanitizer only (ASAN_OPTIONS still overrides). GStreamer's libraries
 * allocate in their load-time constructors: slow unwinding reaches _dl_init through them,
 * so the suppression in lsan.supp matches (test_leaks.py does the same). */
const char *__asan_default_options (void);
const char *
__asan_default_options (void)
{
  return "fast_unwind_on_malloc=0:malloc_context_size=8";
}

int
main (int argc, char **argv)
{
  int rc;

  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn) g_test_add ("/slot-core/" name, Fixture, NULL, fixture_setup, fn, \
      fixture_teardown)
  ADD ("output-lines", test_output_lines);
  ADD ("output-refused", test_output_refused);
  ADD ("output-write-failure", test_output_write_failure);
  ADD ("real-bus-error", test_real_bus_error);
  ADD ("path-check-local", test_path_check_local);
#undef ADD
  g_test_add_func ("/slot-core/call-queue", test_call_queue);
  g_test_add_func ("/slot-core/call-is-current", test_call_is_current);
  g_test_add_func ("/slot-core/path-check-deadline", test_path_check_deadline);
  g_test_add_func ("/slot-core/slot-of-object", test_slot_of_object);
  g_test_add_func ("/slot-core/error-text", test_error_text);
  g_test_add_func ("/slot-core/live-uri", test_live_uri);
  g_test_add_func ("/slot-core/live-backoff", test_live_backoff);
  g_test_add_func ("/slot-core/live-resume", test_live_resume_keeps_or_resets);
  g_test_add_func ("/slot-core/live-gives-up", test_live_gives_up);
  g_test_add_func ("/slot-core/live-refusal", test_live_refusal_of_message);
  g_test_add_func ("/slot-core/stall-text", test_stall_text);
  g_test_add_func ("/slot-core/source-setup", test_source_setup);
  g_test_add_func ("/slot-core/config-sources", test_config_sources);
  g_test_add_func ("/slot-core/gpu-ids", test_gpu_ids);
  rc = g_test_run ();
  gst_deinit ();
  return rc;
}
