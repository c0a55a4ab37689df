/* Unit tests of the control shim: docs/engine-protocol.md, driven over a real Unix socket.
 *
 * The shim runs with a fake engine on its own thread and main context; the tests are
 * plain blocking socket clients with a receive timeout. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "ds-shim.h"

#define N_SLOTS 3
#define TIMEOUT_S 30

/* ---------- fake engine ---------- */

typedef struct {
  GMutex lock;
  GCond cond;
  gboolean busy[N_SLOTS];
  gint64 file_id[N_SLOTS];
  guint plays, stops, resets, progresses;
  gboolean shutdown_called;
  gchar *last_uri;
  gchar *last_output;
  gboolean last_new_camera;
  gboolean emit_on_play; /* play emits file_error synchronously */
  DsShim *shim;
  GMainLoop *loop;
} Fake;

static gboolean
fake_play (gpointer data, const DsPlayRequest *req, GError **error)
{
  Fake *f = data;
  gboolean ok = TRUE;

  g_mutex_lock (&f->lock);
  if (f->busy[req->slot]) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "slot %d busy", req->slot);
    ok = FALSE;
  } else {
    f->plays++;
    f->busy[req->slot] = TRUE;
    f->file_id[req->slot] = req->file_id;
    g_free (f->last_uri);
    f->last_uri = g_strdup (req->uri);
    g_free (f->last_output);
    f->last_output = g_strdup (req->output_path);
    f->last_new_camera = req->new_camera;
  }
  g_mutex_unlock (&f->lock);
  if (ok && f->emit_on_play) {
    f->busy[req->slot] = FALSE;
    ds_shim_emit_file_error (f->shim, req->slot, req->file_id, "bad file");
  }
  return ok;
}

static gboolean
fake_stop (gpointer data, gint slot, DsStopResult *out, GError **error)
{
  Fake *f = data;
  (void) error;

  g_mutex_lock (&f->lock);
  f->stops++;
  out->was_playing = f->busy[slot];
  out->file_id = f->file_id[slot];
  out->frames = 42;
  f->busy[slot] = FALSE;
  g_mutex_unlock (&f->lock);
  return TRUE;
}

static gboolean
fake_reset (gpointer data, gint slot, GError **error)
{
  Fake *f = data;
  gboolean ok;

  g_mutex_lock (&f->lock);
  ok = !f->busy[slot];
  if (ok)
    f->resets++;
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_BUSY, "slot %d busy", slot);
  g_mutex_unlock (&f->lock);
  return ok;
}

static void
fake_progress (gpointer data, gint slot, DsSlotProgress *out)
{
  Fake *f = data;

  g_mutex_lock (&f->lock);
  f->progresses++;
  out->state = f->busy[slot] ? DS_SLOT_PLAYING : DS_SLOT_IDLE;
  out->has_file = f->busy[slot];
  out->file_id = f->file_id[slot];
  out->position_ns = f->busy[slot] ? 1000 : -1;
  out->duration_ns = f->busy[slot] ? 2000000000 : -1;
  out->frames = f->busy[slot] ? 7 : 0;
  out->camera_frames = f->busy[slot] ? 70 : 0;
  g_mutex_unlock (&f->lock);
}

static void
fake_shutdown (gpointer data)
{
  Fake *f = data;

  g_mutex_lock (&f->lock);
  f->shutdown_called = TRUE;
  g_cond_broadcast (&f->cond);
  g_mutex_unlock (&f->lock);
  /* Like an engine: leave the loop; the server thread then frees the shim. */
  g_main_loop_quit (f->loop);
}

static const DsEngineVTable fake_vtable = {
  .name = "gst",
  .version = "test",
  .play = fake_play,
  .stop = fake_stop,
  .reset = fake_reset,
  .progress = fake_progress,
  .shutdown = fake_shutdown,
};

/* ---------- server fixture ---------- */

typedef struct {
  Fake fake;
  gchar *dir;
  gchar *path;
  GMainContext *ctx;
  GThread *thread;
  gboolean ready_at_start;
  gboolean started;
  gboolean start_ok;
} Server;

static gpointer
server_thread (gpointer data)
{
  Server *s = data;
  static const gint gpus[] = { 1, 0 };
  GError *err = NULL;

  g_main_context_push_thread_default (s->ctx);
  s->fake.shim = ds_shim_new (&fake_vtable, &s->fake, N_SLOTS, "/etc/ds/test.txt", gpus, 2);
  g_mutex_lock (&s->fake.lock);
  s->start_ok = ds_shim_start (s->fake.shim, s->path, &err);
  if (s->start_ok && s->ready_at_start)
    ds_shim_set_ready (s->fake.shim);
  s->started = TRUE;
  g_cond_broadcast (&s->fake.cond);
  g_mutex_unlock (&s->fake.lock);
  g_assert_no_error (err);
  g_main_loop_run (s->fake.loop);
  ds_shim_free (s->fake.shim);
  g_main_context_pop_thread_default (s->ctx);
  return NULL;
}

static void
server_setup (Server *s, gconstpointer data)
{
  memset (s, 0, sizeof *s);
  g_mutex_init (&s->fake.lock);
  g_cond_init (&s->fake.cond);
  s->dir = g_dir_make_tmp ("ds-shim-XXXXXX", NULL);
  s->path = g_build_filename (s->dir, "ctl.sock", NULL);
  s->ctx = g_main_context_new ();
  s->fake.loop = g_main_loop_new (s->ctx, FALSE);
  s->ready_at_start = data == NULL;
  /* A stale regular file at the path must be replaced. */
  g_assert_true (g_file_set_contents (s->path, "stale", -1, NULL));
  s->thread = g_thread_new ("shim", server_thread, s);
  g_mutex_lock (&s->fake.lock);
  while (!s->started)
    g_cond_wait (&s->fake.cond, &s->fake.lock);
  g_mutex_unlock (&s->fake.lock);
  g_assert_true (s->start_ok);
}

static gboolean
quit_loop (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
server_teardown (Server *s, gconstpointer data)
{
  (void) data;
  g_main_context_invoke (s->ctx, quit_loop, s->fake.loop);
  g_thread_join (s->thread);
  /* ds_shim_free removes the socket file. */
  g_assert_false (g_file_test (s->path, G_FILE_TEST_EXISTS));
  g_rmdir (s->dir);
  g_main_loop_unref (s->fake.loop);
  g_main_context_unref (s->ctx);
  g_free (s->fake.last_uri);
  g_free (s->fake.last_output);
  g_mutex_clear (&s->fake.lock);
  g_cond_clear (&s->fake.cond);
  g_free (s->path);
  g_free (s->dir);
}

/* Runs func on the server's main context and waits for it. */
typedef struct {
  Server *s;
  void (*func) (Server *s, gpointer arg);
  gpointer arg;
  gboolean done;
} Call;

static gboolean
call_on_server_cb (gpointer data)
{
  Call *c = data;

  c->func (c->s, c->arg);
  g_mutex_lock (&c->s->fake.lock);
  c->done = TRUE;
  g_cond_broadcast (&c->s->fake.cond);
  g_mutex_unlock (&c->s->fake.lock);
  return G_SOURCE_REMOVE;
}

static void
call_on_server (Server *s, void (*func) (Server *, gpointer), gpointer arg)
{
  Call c = { s, func, arg, FALSE };
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_S * G_TIME_SPAN_SECOND;

  g_main_context_invoke (s->ctx, call_on_server_cb, &c);
  g_mutex_lock (&s->fake.lock);
  while (!c.done)
    g_assert_true (g_cond_wait_until (&s->fake.cond, &s->fake.lock, deadline));
  g_mutex_unlock (&s->fake.lock);
}

/* ---------- client ---------- */

typedef struct {
  int fd;
  GString *buf;
} Client;

static Client *
client_connect (Server *s)
{
  Client *c = g_new0 (Client, 1);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  struct timeval tv = { .tv_sec = TIMEOUT_S };

  c->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (c->fd, >=, 0);
  g_strlcpy (addr.sun_path, s->path, sizeof addr.sun_path);
  g_assert_cmpint (connect (c->fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  setsockopt (c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  c->buf = g_string_new (NULL);
  return c;
}

static void
client_close (Client *c)
{
  close (c->fd);
  g_string_free (c->buf, TRUE);
  g_free (c);
}

static void
client_write (Client *c, const gchar *data, gsize len)
{
  while (len > 0) {
    ssize_t n = send (c->fd, data, len, MSG_NOSIGNAL);
    g_assert_cmpint (n, >, 0);
    data += n;
    len -= (gsize) n;
  }
}

static void
client_send (Client *c, const gchar *line)
{
  /* One write: after a "shutdown" inside line the shim may close before a second
   * write of the newline, which would then fail with EPIPE. */
  gchar *full = g_strconcat (line, "\n", NULL);

  client_write (c, full, strlen (full));
  g_free (full);
}

/* Next line, or NULL at end of stream. Fails the test on timeout. */
static gchar *
client_read_line (Client *c)
{
  for (;;) {
    gchar *nl = memchr (c->buf->str, '\n', c->buf->len);
    gchar chunk[65536];
    ssize_t n;

    if (nl != NULL) {
      gchar *line = g_strndup (c->buf->str, (gsize) (nl - c->buf->str));
      g_string_erase (c->buf, 0, nl - c->buf->str + 1);
      return line;
    }
    n = recv (c->fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == ECONNRESET)
      return NULL;
    g_assert_cmpint (n, >=, 0); /* < 0: timed out waiting for a line */
    if (n == 0)
      return NULL;
    g_string_append_len (c->buf, chunk, n);
  }
}

static JsonObject *
parse_object (const gchar *line)
{
  JsonNode *node = json_from_string (line, NULL);
  JsonObject *obj;

  g_assert_nonnull (node);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (node));
  obj = json_object_ref (json_node_get_object (node));
  json_node_unref (node);
  return obj;
}

static JsonObject *
client_read_object (Client *c)
{
  gchar *line = client_read_line (c);
  JsonObject *obj;

  g_assert_nonnull (line);
  obj = parse_object (line);
  g_free (line);
  return obj;
}

/* Sends line (unless NULL), expects one reply {"id": <id_json>, "ok": false, "error": error}. */
static void
expect_error (Client *c, const gchar *line, const gchar *id_json, const gchar *error)
{
  JsonObject *obj;
  JsonNode *want_id = json_from_string (id_json, NULL);

  if (line != NULL)
    client_send (c, line);
  obj = client_read_object (c);
  g_assert_true (json_node_equal (json_object_get_member (obj, "id"), want_id));
  g_assert_false (json_object_get_boolean_member (obj, "ok"));
  g_assert_cmpstr (json_object_get_string_member (obj, "error"), ==, error);
  g_assert_cmpuint (json_object_get_size (obj), ==, 3);
  json_node_unref (want_id);
  json_object_unref (obj);
}

/* Sends line, expects {"id": id, "ok": true, ...}; returns the reply. */
static JsonObject *
expect_ok (Client *c, const gchar *line, gint64 id)
{
  JsonObject *obj;

  client_send (c, line);
  obj = client_read_object (c);
  g_assert_cmpint (json_object_get_int_member (obj, "id"), ==, id);
  g_assert_true (json_object_get_boolean_member (obj, "ok"));
  return obj;
}

static void
expect_event (Client *c, const gchar *name)
{
  JsonObject *obj = client_read_object (c);

  g_assert_cmpstr (json_object_get_string_member (obj, "event"), ==, name);
  g_assert_false (json_object_has_member (obj, "id"));
  json_object_unref (obj);
}

/* A connected client that has seen the `ready` event. */
static Client *
client_ready (Server *s)
{
  Client *c = client_connect (s);

  expect_event (c, "ready");
  return c;
}

static guint
fake_plays (Server *s)
{
  guint n;

  g_mutex_lock (&s->fake.lock);
  n = s->fake.plays;
  g_mutex_unlock (&s->fake.lock);
  return n;
}

/* ---------- tests ---------- */

static void
test_hello (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  JsonObject *r = expect_ok (c, "{\"id\":1,\"op\":\"hello\"}", 1);
  JsonArray *gpus;
  struct stat st;

  (void) data;
  g_assert_true (json_object_get_boolean_member (r, "ready"));
  g_assert_cmpstr (json_object_get_string_member (r, "engine"), ==, "gst");
  g_assert_cmpstr (json_object_get_string_member (r, "version"), ==, "test");
  g_assert_cmpint (json_object_get_int_member (r, "protocol"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (r, "streams"), ==, N_SLOTS);
  g_assert_cmpstr (json_object_get_string_member (r, "config_path"), ==, "/etc/ds/test.txt");
  gpus = json_object_get_array_member (r, "gpu_ids");
  g_assert_cmpuint (json_array_get_length (gpus), ==, 2);
  g_assert_cmpint (json_array_get_int_element (gpus, 0), ==, 1);
  json_object_unref (r);

  /* The stale file was replaced by a socket only its owner may use. */
  g_assert_cmpint (g_stat (s->path, &st), ==, 0);
  g_assert_true (S_ISSOCK (st.st_mode));
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
  client_close (c);
}

static void
set_ready (Server *s, gpointer arg)
{
  (void) arg;
  ds_shim_set_ready (s->fake.shim);
}

static void
test_not_ready (Server *s, gconstpointer data)
{
  Client *c = client_connect (s);
  JsonObject *r = expect_ok (c, "{\"id\":1,\"op\":\"hello\"}", 1);

  (void) data;
  /* No `ready` event was sent before the hello reply. */
  g_assert_false (json_object_get_boolean_member (r, "ready"));
  json_object_unref (r);
  expect_error (c, "{\"id\":2,\"op\":\"play\",\"slot\":0,\"file_id\":1,\"uri\":\"file:///a\"}",
      "2", "engine not ready");
  g_assert_cmpuint (fake_plays (s), ==, 0);
  call_on_server (s, set_ready, NULL);
  expect_event (c, "ready");
  r = expect_ok (c, "{\"id\":3,\"op\":\"hello\"}", 3);
  g_assert_true (json_object_get_boolean_member (r, "ready"));
  json_object_unref (r);
  client_close (c);
}

static void
test_malformed (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  static const struct {
    const gchar *line, *id, *error;
  } cases[] = {
    { "[1,2]", "null", "malformed JSON: not an object" },
    { "42", "null", "malformed JSON: not an object" },
    { "\"op\"", "null", "malformed JSON: not an object" },
    { "{\"id\":1,\"op\":\"hello\"", "null", NULL },
    { "not json", "null", NULL },
    { "", "null", NULL },
    { "{\"op\":\"hello\"}", "null", "missing or invalid id" },
    { "{\"id\":null,\"op\":\"hello\"}", "null", "missing or invalid id" },
    { "{\"id\":1.5,\"op\":\"hello\"}", "null", "missing or invalid id" },
    { "{\"id\":true,\"op\":\"hello\"}", "null", "missing or invalid id" },
    { "{\"id\":[1],\"op\":\"hello\"}", "null", "missing or invalid id" },
    { "{\"id\":{},\"op\":\"hello\"}", "null", "missing or invalid id" },
    { "{\"id\":5}", "5", "missing or invalid op" },
    { "{\"id\":5,\"op\":7}", "5", "missing or invalid op" },
    { "{\"id\":5,\"op\":null}", "5", "missing or invalid op" },
    { "{\"id\":\"a\",\"op\":\"fly\"}", "\"a\"", "unknown op \"fly\"" },
    { "{\"id\":6,\"op\":\"HELLO\"}", "6", "unknown op \"HELLO\"" },
    { "{\"id\":6,\"op\":\"say \\\"hi\\\"\"}", "6", "unknown op \"say \"hi\"\"" },
    /* A lone surrogate escape decodes to bytes that are not UTF-8: refused by the
     * parser (whose message quotes them: the reply must still parse), or, followed by
     * more text, refused here. */
    { "{\"id\":\"\\ud800\",\"op\":\"hello\"}", "null", NULL },
    { "{\"id\":\"\\ud800x\",\"op\":\"hello\"}", "null", "missing or invalid id" },
    { "{\"id\":7,\"op\":\"\\ud800x\"}", "7", "missing or invalid op" },
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    if (cases[i].error != NULL) {
      expect_error (c, cases[i].line, cases[i].id, cases[i].error);
    } else {
      JsonObject *r;

      client_send (c, cases[i].line);
      r = client_read_object (c);
      g_assert_true (json_object_get_null_member (r, "id"));
      g_assert_false (json_object_get_boolean_member (r, "ok"));
      g_assert_true (g_str_has_prefix (json_object_get_string_member (r, "error"),
          "malformed JSON: "));
      json_object_unref (r);
    }
  }
  /* Invalid UTF-8 and an embedded NUL byte. */
  {
    static const gchar bad_utf8[] = "{\"id\":1,\"op\":\"\xff\"}\n";
    static const gchar nul[] = "{\"id\":1,\"op\":\"hello\"}\0x\n";

    client_write (c, bad_utf8, sizeof bad_utf8 - 1);
    expect_error (c, NULL, "null", "malformed JSON: invalid UTF-8 at byte 14");
    client_write (c, nul, sizeof nul - 1);
    expect_error (c, NULL, "null", "malformed JSON: NUL byte in line");
  }
  g_assert_cmpuint (fake_plays (s), ==, 0);
  /* Still serving, and CRLF line ends are accepted. */
  client_write (c, "{\"id\":9,\"op\":\"progress\"}\r\n", strlen ("{\"id\":9,\"op\":\"progress\"}\r\n"));
  json_object_unref (client_read_object (c));
  client_close (c);
}

static void
test_play_fields (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  static const struct {
    const gchar *line, *error;
  } cases[] = {
    { "{\"id\":1,\"op\":\"play\",\"file_id\":1,\"uri\":\"file:///a\"}", "field \"slot\": expected integer" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":\"0\",\"file_id\":1,\"uri\":\"file:///a\"}", "field \"slot\": expected integer" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0.0,\"file_id\":1,\"uri\":\"file:///a\"}", "field \"slot\": expected integer" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":null,\"file_id\":1,\"uri\":\"file:///a\"}", "field \"slot\": expected integer" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":-1,\"file_id\":1,\"uri\":\"file:///a\"}", "slot -1 out of range (0..2)" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":3,\"file_id\":1,\"uri\":\"file:///a\"}", "slot 3 out of range (0..2)" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":9223372036854775807,\"file_id\":1,\"uri\":\"file:///a\"}", "slot 9223372036854775807 out of range (0..2)" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":1e30,\"file_id\":1,\"uri\":\"file:///a\"}", "field \"slot\": expected integer" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0,\"uri\":\"file:///a\"}", "field \"file_id\": expected integer" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":\"1\",\"uri\":\"file:///a\"}", "field \"file_id\": expected integer" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":1}", "field \"uri\": expected non-empty string" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":1,\"uri\":\"\"}", "field \"uri\": expected non-empty string" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":1,\"uri\":[]}", "field \"uri\": expected non-empty string" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":1,\"uri\":\"file:///a\",\"new_camera\":1}", "field \"new_camera\": expected boolean" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":1,\"uri\":\"file:///a\",\"new_camera\":\"true\"}", "field \"new_camera\": expected boolean" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":1,\"uri\":\"file:///a\",\"output_path\":5}", "field \"output_path\": expected string" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":1,\"uri\":\"file:///\\ud800x\"}", "field \"uri\": invalid UTF-8" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":1,\"uri\":\"file:///a\",\"output_path\":\"/o\\udc00x\"}", "field \"output_path\": invalid UTF-8" },
    /* Every type check comes before the slot's range check. */
    { "{\"id\":1,\"op\":\"play\",\"slot\":9,\"file_id\":\"1\",\"uri\":\"file:///a\"}", "field \"file_id\": expected integer" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":9,\"file_id\":1}", "field \"uri\": expected non-empty string" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":-1,\"file_id\":1,\"uri\":\"file:///a\",\"new_camera\":0}", "field \"new_camera\": expected boolean" },
    { "{\"id\":1,\"op\":\"play\",\"slot\":3,\"file_id\":1,\"uri\":\"file:///a\",\"output_path\":[]}", "field \"output_path\": expected string" },
    { "{\"id\":1,\"op\":\"stop\"}", "field \"slot\": expected integer" },
    { "{\"id\":1,\"op\":\"stop\",\"slot\":true}", "field \"slot\": expected integer" },
    { "{\"id\":1,\"op\":\"stop\",\"slot\":-5}", "slot -5 out of range (0..2)" },
    { "{\"id\":1,\"op\":\"stop\",\"slot\":3}", "slot 3 out of range (0..2)" },
    { "{\"id\":1,\"op\":\"reset\",\"slot\":{}}", "field \"slot\": expected integer" },
    { "{\"id\":1,\"op\":\"reset\",\"slot\":100}", "slot 100 out of range (0..2)" },
  };

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    expect_error (c, cases[i].line, "1", cases[i].error);
  g_mutex_lock (&s->fake.lock);
  g_assert_cmpuint (s->fake.plays + s->fake.stops + s->fake.resets, ==, 0);
  g_mutex_unlock (&s->fake.lock);
  client_close (c);
}

/* `{"id":1,"op":"hello","x":` + depth nested arrays + `}`. */
static gchar *
nested_request (guint depth)
{
  GString *line = g_string_new ("{\"id\":1,\"op\":\"hello\",\"x\":");

  for (guint i = 0; i < depth; i++)
    g_string_append_c (line, '[');
  for (guint i = 0; i < depth; i++)
    g_string_append_c (line, ']');
  g_string_append_c (line, '}');
  return g_string_free (line, FALSE);
}

/* json-glib would recurse once per level and overflow the stack: refused unparsed. */
static void
test_deep_nesting (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  GString *deep;
  gchar *line;

  (void) data;
  /* 100,000 levels (100 KB), never closed. */
  deep = g_string_new ("{\"id\":5,\"x\":");
  for (guint i = 0; i < 100000; i++)
    g_string_append_c (deep, '[');
  expect_error (c, deep->str, "null", "malformed JSON: nesting too deep");
  g_string_free (deep, TRUE);

  /* json-glib also reads 'single-quoted' strings, /comments/ between slashes and \u
   * escapes that swallow a quote: a quote inside them must not hide the brackets that
   * follow from the count. */
  {
    static const gchar *const heads[] = {
      "{\"id\":5,\"a\":'\"',\"x\":",
      "{\"id\":5,/ \" /\"x\":",
      "{\"id\":5,\"a\":\"\\u12\"x\",\"x\":",
      "{\"id\":5,\"a\":\"\\ud800\"x\",\"x\":",
      "{\"id\":5,\"a\":\"\\\\\",\"x\":",
    };

    for (guint i = 0; i < G_N_ELEMENTS (heads); i++) {
      deep = g_string_new (heads[i]);
      for (guint k = 0; k < 100000; k++)
        g_string_append_c (deep, '[');
      expect_error (c, deep->str, "null", "malformed JSON: nesting too deep");
      g_string_free (deep, TRUE);
    }
  }
  json_object_unref (expect_ok (c, "{\"id\":3,\"op\":\"hello\",\"a\":'\"[{',/\"[[/\"b\":\"\\u12\"[\"}", 3));

  /* The object itself is level 1: 63 arrays inside it are the most that is accepted. */
  line = nested_request (63);
  json_object_unref (expect_ok (c, line, 1));
  g_free (line);
  line = nested_request (64);
  expect_error (c, line, "null", "malformed JSON: nesting too deep");
  g_free (line);

  /* Brackets inside strings (also after an escaped quote) are text, not nesting. */
  deep = g_string_new ("{\"id\":2,\"op\":\"hello\",\"x\":\"\\\"");
  for (guint i = 0; i < 1000; i++)
    g_string_append (deep, "[{");
  g_string_append (deep, "\\\\\",\"y\":[[1]]}");
  json_object_unref (expect_ok (c, deep->str, 2));
  g_string_free (deep, TRUE);
  client_close (c);
}

/* json-glib hands back integers beyond int64 wrapped around: refused as malformed. */
static void
test_integer_range (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  static const gchar *const refused[] = {
    "{\"id\":9223372036854775808,\"op\":\"hello\"}",
    "{\"id\":-9223372036854775809,\"op\":\"hello\"}",
    "{\"id\":18446744073709551617,\"op\":\"hello\"}",
    "{\"id\":100000000000000000000000000000,\"op\":\"hello\"}",
    /* 2^64 + 1 would come back as file_id 1, 2^64 as slot 0. */
    "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":18446744073709551617,\"uri\":\"file:///a\"}",
    "{\"id\":1,\"op\":\"play\",\"slot\":18446744073709551616,\"file_id\":1,\"uri\":\"file:///a\"}",
    "{\"id\":1,\"op\":\"stop\",\"slot\":-18446744073709551616}",
    "{\"id\":1,\"op\":\"hello\",\"unknown\":[99999999999999999999]}",
    /* json-glib's other integer spellings wrap just the same. */
    "{\"id\":0x8000000000000000,\"op\":\"hello\"}",
    "{\"id\":$10000000000000001,\"op\":\"hello\"}",
    "{\"id\":01000000000000000000000,\"op\":\"hello\"}",
    "{\"id\":0b1000000000000000000000000000000000000000000000000000000000000000,\"op\":\"hello\"}",
    "{\"id\":- 9223372036854775809,\"op\":\"hello\"}",
  };
  JsonObject *r;

  (void) data;
  for (guint i = 0; i < G_N_ELEMENTS (refused); i++)
    expect_error (c, refused[i], "null", "malformed JSON: integer out of range");
  g_assert_cmpuint (fake_plays (s), ==, 0);
  g_mutex_lock (&s->fake.lock);
  g_assert_cmpuint (s->fake.stops, ==, 0);
  g_mutex_unlock (&s->fake.lock);

  /* The int64 limits themselves, digits in strings, leading zeros of a fraction and
   * exponents are fine. */
  json_object_unref (expect_ok (c, "{\"id\":9223372036854775807,\"op\":\"hello\"}",
      G_MAXINT64));
  json_object_unref (expect_ok (c, "{\"id\":-9223372036854775808,\"op\":\"hello\"}",
      G_MININT64));
  json_object_unref (expect_ok (c, "{\"id\":0x7fffffffffffffff,\"op\":\"hello\"}",
      G_MAXINT64));
  json_object_unref (expect_ok (c, "{\"id\":-0777777777777777777777,\"op\":\"hello\"}",
      -G_MAXINT64));
  json_object_unref (expect_ok (c, "{\"id\":3,\"op\":\"hello\",\"x\":\"99999999999999999999\","
      "\"y\":1e400,\"z\":-0.000000000000000000001,\"w\":18446744073709551616.5}", 3));
  r = expect_ok (c, "{\"id\":4,\"op\":\"play\",\"slot\":0,\"file_id\":9223372036854775807,"
      "\"uri\":\"file:///a\"}", 4);
  json_object_unref (r);
  g_mutex_lock (&s->fake.lock);
  g_assert_cmpint (s->fake.file_id[0], ==, G_MAXINT64);
  g_mutex_unlock (&s->fake.lock);
  client_close (c);
}

static void
test_play_stop_reset (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  JsonObject *r;

  (void) data;
  json_object_unref (expect_ok (c, "{\"id\":1,\"op\":\"play\",\"slot\":2,\"file_id\":77,"
      "\"uri\":\"file:///v/a.mp4\",\"new_camera\":true,\"output_path\":\"/o/a.txt\","
      "\"extra\":\"ignored\"}", 1));
  g_mutex_lock (&s->fake.lock);
  g_assert_cmpuint (s->fake.plays, ==, 1);
  g_assert_cmpint (s->fake.file_id[2], ==, 77);
  g_assert_cmpstr (s->fake.last_uri, ==, "file:///v/a.mp4");
  g_assert_cmpstr (s->fake.last_output, ==, "/o/a.txt");
  g_assert_true (s->fake.last_new_camera);
  g_mutex_unlock (&s->fake.lock);

  /* Busy is the engine's verdict, passed through. */
  expect_error (c, "{\"id\":2,\"op\":\"play\",\"slot\":2,\"file_id\":78,\"uri\":\"file:///b\"}",
      "2", "slot 2 busy");
  expect_error (c, "{\"id\":3,\"op\":\"reset\",\"slot\":2}", "3", "slot 2 busy");

  r = expect_ok (c, "{\"id\":4,\"op\":\"progress\"}", 4);
  {
    JsonArray *slots = json_object_get_array_member (r, "slots");
    JsonObject *s0, *s2;

    g_assert_cmpuint (json_array_get_length (slots), ==, N_SLOTS);
    s0 = json_array_get_object_element (slots, 0);
    s2 = json_array_get_object_element (slots, 2);
    g_assert_cmpint (json_object_get_int_member (s0, "slot"), ==, 0);
    g_assert_cmpstr (json_object_get_string_member (s0, "state"), ==, "idle");
    g_assert_true (json_object_get_null_member (s0, "file_id"));
    g_assert_true (json_object_get_null_member (s0, "position_ns"));
    g_assert_true (json_object_get_null_member (s0, "duration_ns"));
    g_assert_cmpint (json_object_get_int_member (s2, "slot"), ==, 2);
    g_assert_cmpstr (json_object_get_string_member (s2, "state"), ==, "playing");
    g_assert_cmpint (json_object_get_int_member (s2, "file_id"), ==, 77);
    g_assert_cmpint (json_object_get_int_member (s2, "position_ns"), ==, 1000);
    g_assert_cmpint (json_object_get_int_member (s2, "duration_ns"), ==, 2000000000);
    g_assert_cmpint (json_object_get_int_member (s2, "frames"), ==, 7);
    g_assert_cmpint (json_object_get_int_member (s2, "camera_frames"), ==, 70);
  }
  json_object_unref (r);

  r = expect_ok (c, "{\"id\":5,\"op\":\"stop\",\"slot\":2}", 5);
  g_assert_true (json_object_get_boolean_member (r, "was_playing"));
  g_assert_cmpint (json_object_get_int_member (r, "file_id"), ==, 77);
  g_assert_cmpint (json_object_get_int_member (r, "frames"), ==, 42);
  json_object_unref (r);
  r = expect_ok (c, "{\"id\":6,\"op\":\"stop\",\"slot\":2}", 6);
  g_assert_false (json_object_get_boolean_member (r, "was_playing"));
  g_assert_false (json_object_has_member (r, "file_id"));
  json_object_unref (r);
  json_object_unref (expect_ok (c, "{\"id\":7,\"op\":\"reset\",\"slot\":2}", 7));
  g_mutex_lock (&s->fake.lock);
  g_assert_cmpuint (s->fake.resets, ==, 1);
  g_mutex_unlock (&s->fake.lock);

  /* An empty output_path means no output. */
  json_object_unref (expect_ok (c, "{\"id\":8,\"op\":\"play\",\"slot\":0,\"file_id\":1,"
      "\"uri\":\"file:///c\",\"output_path\":\"\"}", 8));
  g_mutex_lock (&s->fake.lock);
  g_assert_null (s->fake.last_output);
  g_assert_false (s->fake.last_new_camera);
  g_mutex_unlock (&s->fake.lock);
  client_close (c);
}

static void
test_ids_echoed (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  JsonObject *r;

  (void) data;
  client_send (c, "{\"id\":\"req-\\u00e9\",\"op\":\"reset\",\"slot\":0}");
  r = client_read_object (c);
  g_assert_cmpstr (json_object_get_string_member (r, "id"), ==, "req-\xc3\xa9");
  json_object_unref (r);
  json_object_unref (expect_ok (c, "{\"op\":\"hello\",\"id\":9007199254740993}",
      G_GINT64_CONSTANT (9007199254740993)));
  json_object_unref (expect_ok (c, "{\"id\":-3,\"op\":\"hello\"}", -3));
  client_close (c);
}

/* Several requests in one write: replies in order, one each. */
static void
test_pipelined (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  const gchar *batch = "{\"id\":1,\"op\":\"hello\"}\n{\"id\":2,\"op\":\"bogus\"}\n"
      "{\"id\":3,\"op\":\"progress\"}\n{\"id\":4,\"op\":\"stop\",\"slot\":0}\n";

  (void) data;
  client_write (c, batch, strlen (batch));
  for (gint64 id = 1; id <= 4; id++) {
    JsonObject *r = client_read_object (c);
    g_assert_cmpint (json_object_get_int_member (r, "id"), ==, id);
    g_assert_true (json_object_get_boolean_member (r, "ok") == (id != 2));
    json_object_unref (r);
  }
  client_close (c);
}

/* Events a request causes come after its reply. */
static void
test_reply_before_event (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  JsonObject *r;

  (void) data;
  s->fake.emit_on_play = TRUE;
  json_object_unref (expect_ok (c, "{\"id\":1,\"op\":\"play\",\"slot\":1,\"file_id\":5,"
      "\"uri\":\"file:///x\"}", 1));
  r = client_read_object (c);
  g_assert_cmpstr (json_object_get_string_member (r, "event"), ==, "file_error");
  g_assert_cmpint (json_object_get_int_member (r, "slot"), ==, 1);
  g_assert_cmpint (json_object_get_int_member (r, "file_id"), ==, 5);
  g_assert_cmpstr (json_object_get_string_member (r, "error"), ==, "bad file");
  json_object_unref (r);
  client_close (c);
}

static void
emit_some (Server *s, gpointer arg)
{
  guint n = GPOINTER_TO_UINT (arg);

  for (guint i = 0; i < n; i++) {
    ds_shim_emit_file_started (s->fake.shim, 0, i, 100 + i);
    ds_shim_emit_file_done (s->fake.shim, 0, i, 60, 60 * (guint64) (i + 1), 200 + i);
  }
}

static void
noop (Server *s, gpointer arg)
{
  (void) s;
  (void) arg;
}

/* Events without a client are dropped; a client that does not read does not stall the
 * loop, and gets everything in order once it reads. */
static void
test_events_buffered (Server *s, gconstpointer data)
{
  const guint n = 8000;
  Client *c;
  JsonObject *r;

  (void) data;
  call_on_server (s, emit_some, GUINT_TO_POINTER (3)); /* nobody connected */
  c = client_ready (s);
  json_object_unref (expect_ok (c, "{\"id\":1,\"op\":\"hello\"}", 1));

  call_on_server (s, emit_some, GUINT_TO_POINTER (n)); /* ~1 MB, beyond the socket buffers */
  call_on_server (s, noop, NULL);                      /* the loop still runs */
  for (guint i = 0; i < n; i++) {
    r = client_read_object (c);
    g_assert_cmpstr (json_object_get_string_member (r, "event"), ==, "file_started");
    g_assert_cmpint (json_object_get_int_member (r, "file_id"), ==, i);
    g_assert_cmpint (json_object_get_int_member (r, "mono_ns"), ==, 100 + i);
    json_object_unref (r);
    r = client_read_object (c);
    g_assert_cmpstr (json_object_get_string_member (r, "event"), ==, "file_done");
    g_assert_cmpint (json_object_get_int_member (r, "file_id"), ==, i);
    g_assert_cmpint (json_object_get_int_member (r, "frames"), ==, 60);
    g_assert_cmpint (json_object_get_int_member (r, "camera_frames"), ==, 60 * (i + 1));
    json_object_unref (r);
  }
  json_object_unref (expect_ok (c, "{\"id\":2,\"op\":\"hello\"}", 2));
  client_close (c);
}

static gchar *
padded_request (gsize total_len)
{
  const gchar *head = "{\"id\":1,\"op\":\"hello\",\"pad\":\"";
  const gchar *tail = "\"}";
  gchar *line = g_malloc (total_len + 2);
  gsize fill = total_len - strlen (head) - strlen (tail);

  memcpy (line, head, strlen (head));
  memset (line + strlen (head), 'x', fill);
  memcpy (line + strlen (head) + fill, tail, strlen (tail));
  line[total_len] = '\n';
  line[total_len + 1] = '\0';
  return line;
}

static void
test_line_limit (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  gchar *line;
  JsonObject *r;

  (void) data;
  /* Exactly the limit is fine. */
  line = padded_request (DS_SHIM_MAX_LINE);
  client_write (c, line, DS_SHIM_MAX_LINE + 1);
  g_free (line);
  json_object_unref (client_read_object (c));

  /* One byte more: error reply, then the connection is closed. */
  line = padded_request (DS_SHIM_MAX_LINE + 1);
  client_write (c, line, DS_SHIM_MAX_LINE + 2);
  g_free (line);
  r = client_read_object (c);
  g_assert_true (json_object_get_null_member (r, "id"));
  g_assert_cmpstr (json_object_get_string_member (r, "error"), ==,
      "line too long (max 1048576 bytes)");
  json_object_unref (r);
  g_assert_null (client_read_line (c));
  client_close (c);

  /* A newline-free stream is cut off too, without waiting for its end. */
  c = client_ready (s);
  line = g_malloc (DS_SHIM_MAX_LINE + 4096);
  memset (line, ' ', DS_SHIM_MAX_LINE + 4096);
  client_write (c, line, DS_SHIM_MAX_LINE + 4096);
  g_free (line);
  r = client_read_object (c);
  g_assert_cmpstr (json_object_get_string_member (r, "error"), ==,
      "line too long (max 1048576 bytes)");
  json_object_unref (r);
  g_assert_null (client_read_line (c));
  client_close (c);

  /* The engine is untouched and takes the next client. */
  c = client_ready (s);
  json_object_unref (expect_ok (c, "{\"id\":2,\"op\":\"hello\"}", 2));
  client_close (c);
  g_assert_cmpuint (fake_plays (s), ==, 0);
}

static void
test_vanish_mid_line (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);

  (void) data;
  client_write (c, "{\"id\":1,\"op\":\"play\",\"slot\":0,\"file_id\":1,\"uri\":\"fi", 50);
  client_close (c);
  /* A new client right away is accepted and the half line is gone with the old one. */
  c = client_ready (s);
  json_object_unref (expect_ok (c, "{\"id\":2,\"op\":\"hello\"}", 2));
  client_close (c);
  g_assert_cmpuint (fake_plays (s), ==, 0);
}

static void
test_second_client (Server *s, gconstpointer data)
{
  Client *a = client_ready (s);
  Client *b = client_connect (s);
  JsonObject *r = client_read_object (b);

  (void) data;
  g_assert_cmpstr (json_object_get_string_member (r, "event"), ==, "rejected");
  g_assert_cmpstr (json_object_get_string_member (r, "error"), ==,
      "another client is connected");
  json_object_unref (r);
  g_assert_null (client_read_line (b));
  client_close (b);
  json_object_unref (expect_ok (a, "{\"id\":1,\"op\":\"hello\"}", 1));
  client_close (a);
}

static void
test_shutdown (Server *s, gconstpointer data)
{
  Client *c = client_ready (s);
  gint64 deadline = g_get_monotonic_time () + TIMEOUT_S * G_TIME_SPAN_SECOND;

  (void) data;
  json_object_unref (expect_ok (c, "{\"id\":1,\"op\":\"shutdown\"}\n{\"id\":2,\"op\":\"hello\"}", 1));
  g_mutex_lock (&s->fake.lock);
  while (!s->fake.shutdown_called)
    g_assert_true (g_cond_wait_until (&s->fake.cond, &s->fake.lock, deadline));
  g_mutex_unlock (&s->fake.lock);
  /* Nothing after shutdown is answered: the next thing is the end of the stream. */
  g_assert_null (client_read_line (c));
  client_close (c);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(name, fn, not_ready) \
  g_test_add ("/shim/" name, Server, not_ready, server_setup, fn, server_teardown)
  ADD ("hello", test_hello, NULL);
  ADD ("not-ready", test_not_ready, "not ready");
  ADD ("malformed", test_malformed, NULL);
  ADD ("deep-nesting", test_deep_nesting, NULL);
  ADD ("integer-range", test_integer_range, NULL);
  ADD ("play-fields", test_play_fields, NULL);
  ADD ("play-stop-reset", test_play_stop_reset, NULL);
  ADD ("ids-echoed", test_ids_echoed, NULL);
  ADD ("pipelined", test_pipelined, NULL);
  ADD ("reply-before-event", test_reply_before_event, NULL);
  ADD ("events-buffered", test_events_buffered, NULL);
  ADD ("line-limit", test_line_limit, NULL);
  ADD ("vanish-mid-line", test_vanish_mid_line, NULL);
  ADD ("second-client", test_second_client, NULL);
  ADD ("shutdown", test_shutdown, NULL);
#undef ADD
  return g_test_run ();
}
