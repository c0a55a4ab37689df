/* ds-shim: JSON-lines control socket (docs/engine-protocol.md).
 *
 * Everything runs on one GLib main context. Sockets are non-blocking: input is
 * accumulated until a newline, output is buffered and flushed when the socket is
 * writable, so a slow or stuck client never stalls the engine. */
#include "ds-shim.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <json-glib/json-glib.h>

/* A client that lets this much output pile up is not reading: drop it. */
#define DS_SHIM_MAX_OUTPUT (64 * 1024 * 1024)
/* Reads per dispatch: a client that writes without pause must not starve the loop. */
#define DS_SHIM_READS_PER_DISPATCH 16
/* How long a shutdown waits for its reply to drain before going ahead anyway. */
#define DS_SHIM_SHUTDOWN_FLUSH_MS 1000
/* Deepest [ / { nesting accepted: json-glib recurses once per level, without a limit. */
#define DS_SHIM_MAX_DEPTH 64

typedef struct _DsClient DsClient;

struct _DsClient {
  DsShim *shim;
  GSocket *socket;
  GSource *in_source;
  GSource *out_source;
  GByteArray *in;
  gsize scanned;     /* bytes of `in` known to hold no newline */
  GByteArray *out;
  gsize out_pos;     /* bytes of `out` already sent */
  gboolean closing;  /* close once `out` is drained; read nothing more */
  gboolean dead;     /* detached; freed by whoever holds it when done */
  guint busy;        /* > 0 while a callback uses it */
};

struct _DsShim {
  DsEngineVTable vt;
  gpointer engine;
  guint n_slots;
  gchar *config_path;
  GArray *gpu_ids;
  gboolean ready;

  GMainContext *context;
  gchar *socket_path;
  GSocket *listener;
  GSource *listen_source;
  DsClient *client;

  /* Events emitted while a request is being handled wait for its reply. */
  gboolean dispatching;
  GPtrArray *deferred;

  gboolean shutdown_requested;
  gboolean shutdown_called;
  GSource *shutdown_source;
};

static void client_kill (DsClient *c, const gchar *why);
static void client_maybe_close (DsClient *c);
static void shim_schedule_shutdown (DsShim *shim, guint delay_ms);

/* ---------- output ---------- */

static void
client_free (DsClient *c)
{
  g_byte_array_unref (c->in);
  g_byte_array_unref (c->out);
  g_free (c);
}

static void
client_release (DsClient *c)
{
  g_assert (c->busy > 0);
  if (--c->busy == 0 && c->dead)
    client_free (c);
}

/* Sends as much buffered output as the socket takes now. FALSE: client killed. */
static gboolean
client_flush (DsClient *c)
{
  while (c->out_pos < c->out->len) {
    GError *err = NULL;
    gssize n = g_socket_send (c->socket, (const gchar *) c->out->data + c->out_pos,
        c->out->len - c->out_pos, NULL, &err);
    if (n < 0) {
      if (g_error_matches (err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        g_error_free (err);
        break;
      }
      g_debug ("client write failed: %s", err->message);
      g_error_free (err);
      client_kill (c, "write failed");
      return FALSE;
    }
    c->out_pos += (gsize) n;
  }
  if (c->out_pos == c->out->len) {
    g_byte_array_set_size (c->out, 0);
    c->out_pos = 0;
  } else if (c->out_pos > 64 * 1024 && c->out_pos * 2 > c->out->len) {
    g_byte_array_remove_range (c->out, 0, (guint) c->out_pos);
    c->out_pos = 0;
  }
  return TRUE;
}

static gboolean
client_on_writable (GSocket *socket, GIOCondition cond, gpointer user_data)
{
  DsClient *c = user_data;
  (void) socket;
  (void) cond;

  c->busy++;
  if (client_flush (c) && c->out->len == 0) {
    g_source_destroy (c->out_source);
    g_source_unref (c->out_source);
    c->out_source = NULL;
    client_maybe_close (c);
  }
  client_release (c);
  return G_SOURCE_CONTINUE;
}

static void
client_send_line (DsClient *c, const gchar *line)
{
  if (c->dead)
    return;
  if (c->out->len - c->out_pos > DS_SHIM_MAX_OUTPUT) {
    client_kill (c, "client does not read its output");
    return;
  }
  g_byte_array_append (c->out, (const guint8 *) line, (guint) strlen (line));
  g_byte_array_append (c->out, (const guint8 *) "\n", 1);
  if (c->out_source != NULL)
    return; /* already waiting for the socket to drain */
  if (!client_flush (c))
    return;
  if (c->out->len > 0) {
    c->out_source = g_socket_create_source (c->socket, G_IO_OUT, NULL);
    g_source_set_callback (c->out_source, G_SOURCE_FUNC (client_on_writable), c, NULL);
    g_source_attach (c->out_source, c->shim->context);
  }
}

/* Closes a client that is closing once everything it is owed has been sent. */
static void
client_maybe_close (DsClient *c)
{
  if (c->closing && !c->dead && c->out->len == 0)
    client_kill (c, "closed after error");
}

static void
client_kill (DsClient *c, const gchar *why)
{
  DsShim *shim = c->shim;

  if (c->dead)
    return;
  g_debug ("client gone: %s", why);
  c->dead = TRUE;
  if (c->in_source != NULL) {
    g_source_destroy (c->in_source);
    g_source_unref (c->in_source);
    c->in_source = NULL;
  }
  if (c->out_source != NULL) {
    g_source_destroy (c->out_source);
    g_source_unref (c->out_source);
    c->out_source = NULL;
  }
  g_socket_close (c->socket, NULL);
  g_clear_object (&c->socket);
  if (shim->client == c)
    shim->client = NULL;
  /* A shutdown waiting on this client's output has nothing left to wait for. */
  if (shim->shutdown_requested && !shim->shutdown_called)
    shim_schedule_shutdown (shim, 0);
  if (c->busy == 0)
    client_free (c);
}

static gchar *
node_to_line (JsonNode *node)
{
  JsonGenerator *gen = json_generator_new ();
  gchar *s;

  json_generator_set_root (gen, node);
  s = json_generator_to_data (gen, NULL);
  g_object_unref (gen);
  return s;
}

static gchar *
builder_to_line (JsonBuilder *b)
{
  JsonNode *root = json_builder_get_root (b);
  gchar *s = node_to_line (root);

  json_node_unref (root);
  return s;
}

/* ---------- events ---------- */

static void
shim_send_event (DsShim *shim, JsonBuilder *b)
{
  gchar *line;

  line = builder_to_line (b);
  g_object_unref (b);
  if (shim->client == NULL || shim->client->closing) {
    g_debug ("no client, event dropped: %s", line);
    g_free (line);
    return;
  }
  g_debug ("event%s: %s", shim->dispatching ? " (after the reply)" : "", line);
  if (shim->dispatching)
    g_ptr_array_add (shim->deferred, line);
  else {
    client_send_line (shim->client, line);
    g_free (line);
  }
}

static JsonBuilder *
event_begin (const gchar *name)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "event");
  json_builder_add_string_value (b, name);
  return b;
}

static JsonBuilder *
event_end (JsonBuilder *b)
{
  json_builder_end_object (b);
  return b;
}

static void
member_int (JsonBuilder *b, const gchar *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, v);
}

static void
member_uint (JsonBuilder *b, const gchar *name, guint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, (gint64) MIN (v, (guint64) G_MAXINT64));
}

static void
member_bool (JsonBuilder *b, const gchar *name, gboolean v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_boolean_value (b, v);
}

static void
member_string (JsonBuilder *b, const gchar *name, const gchar *v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, v);
}

void
ds_shim_emit_file_started (DsShim *shim, gint slot, gint64 file_id, gint64 mono_ns)
{
  JsonBuilder *b = event_begin ("file_started");

  member_int (b, "slot", slot);
  member_int (b, "file_id", file_id);
  member_int (b, "mono_ns", mono_ns);
  shim_send_event (shim, event_end (b));
}

void
ds_shim_emit_file_done (DsShim *shim, gint slot, gint64 file_id, guint64 frames,
    guint64 camera_frames, gint64 mono_ns)
{
  JsonBuilder *b = event_begin ("file_done");

  member_int (b, "slot", slot);
  member_int (b, "file_id", file_id);
  member_uint (b, "frames", frames);
  member_uint (b, "camera_frames", camera_frames);
  member_int (b, "mono_ns", mono_ns);
  shim_send_event (shim, event_end (b));
}

void
ds_shim_emit_file_error (DsShim *shim, gint slot, gint64 file_id, const gchar *error)
{
  JsonBuilder *b = event_begin ("file_error");

  member_int (b, "slot", slot);
  member_int (b, "file_id", file_id);
  member_string (b, "error", error != NULL ? error : "unknown error");
  shim_send_event (shim, event_end (b));
}

void
ds_shim_emit_stream_lost (DsShim *shim, gint slot, gint64 file_id, const gchar *reason,
    gboolean will_retry, guint attempt, gint64 retry_in_ms)
{
  JsonBuilder *b = event_begin ("stream_lost");

  member_int (b, "slot", slot);
  member_int (b, "file_id", file_id);
  member_string (b, "reason", reason != NULL ? reason : "unknown");
  member_bool (b, "will_retry", will_retry);
  member_int (b, "attempt", attempt);
  member_int (b, "retry_in_ms", will_retry ? retry_in_ms : 0);
  shim_send_event (shim, event_end (b));
}

void
ds_shim_emit_stream_resumed (DsShim *shim, gint slot, gint64 file_id, gint64 down_ms,
    guint attempts, gboolean tracker_kept)
{
  JsonBuilder *b = event_begin ("stream_resumed");

  member_int (b, "slot", slot);
  member_int (b, "file_id", file_id);
  member_int (b, "down_ms", down_ms);
  member_int (b, "attempts", attempts);
  member_bool (b, "tracker_kept", tracker_kept);
  shim_send_event (shim, event_end (b));
}

void
ds_shim_emit_fatal (DsShim *shim, const gchar *error)
{
  JsonBuilder *b = event_begin ("fatal");

  member_string (b, "error", error != NULL ? error : "unknown error");
  shim_send_event (shim, event_end (b));
  /* The engine exits right after: push the line out now if the socket takes it. */
  if (shim->client != NULL && !shim->dispatching)
    client_flush (shim->client);
}

static void
shim_send_ready (DsShim *shim)
{
  shim_send_event (shim, event_end (event_begin ("ready")));
}

void
ds_shim_set_ready (DsShim *shim)
{
  if (shim->ready)
    return;
  shim->ready = TRUE;
  shim_send_ready (shim);
}

/* ---------- requests ---------- */

typedef struct {
  JsonObject *obj;
  JsonNode *id; /* NULL = reply with "id": null */
  gchar *error; /* set by a failed field lookup */
} DsRequest;

static void
reply_send (DsShim *shim, JsonBuilder *b)
{
  gchar *line = builder_to_line (b);

  g_object_unref (b);
  if (shim->client != NULL)
    client_send_line (shim->client, line);
  g_free (line);
}

static JsonBuilder *
reply_begin (JsonNode *id, gboolean ok)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  if (id != NULL)
    json_builder_add_value (b, json_node_copy (id));
  else
    json_builder_add_null_value (b);
  member_bool (b, "ok", ok);
  return b;
}

static void
reply_error (DsShim *shim, JsonNode *id, const gchar *msg)
{
  JsonBuilder *b = reply_begin (id, FALSE);

  member_string (b, "error", msg);
  json_builder_end_object (b);
  reply_send (shim, b);
}

static void
reply_ok (DsShim *shim, JsonBuilder *b)
{
  json_builder_end_object (b);
  reply_send (shim, b);
}

static gboolean
value_is (JsonNode *node, GType type)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == type;
}

static gboolean
req_int (DsRequest *r, const gchar *name, gint64 *out)
{
  JsonNode *n = json_object_get_member (r->obj, name);

  if (!value_is (n, G_TYPE_INT64)) {
    r->error = g_strdup_printf ("field \"%s\": expected integer", name);
    return FALSE;
  }
  *out = json_node_get_int (n);
  return TRUE;
}

/* Optional fields: absent or null means the default. */
static gboolean
req_opt_bool (DsRequest *r, const gchar *name, gboolean *out)
{
  JsonNode *n = json_object_get_member (r->obj, name);

  *out = FALSE;
  if (n == NULL || JSON_NODE_HOLDS_NULL (n))
    return TRUE;
  if (!value_is (n, G_TYPE_BOOLEAN)) {
    r->error = g_strdup_printf ("field \"%s\": expected boolean", name);
    return FALSE;
  }
  *out = json_node_get_boolean (n);
  return TRUE;
}

static gboolean
req_string (DsRequest *r, const gchar *name, gboolean optional, const gchar **out)
{
  JsonNode *n = json_object_get_member (r->obj, name);

  *out = NULL;
  if (optional && (n == NULL || JSON_NODE_HOLDS_NULL (n)))
    return TRUE;
  if (!value_is (n, G_TYPE_STRING)) {
    r->error = g_strdup_printf ("field \"%s\": expected %s", name,
        optional ? "string" : "non-empty string");
    return FALSE;
  }
  *out = json_node_get_string (n);
  if (!optional && **out == '\0') {
    r->error = g_strdup_printf ("field \"%s\": expected non-empty string", name);
    return FALSE;
  }
  /* The line is valid UTF-8, but json-glib decodes a lone surrogate escape ("\ud800")
   * into bytes that are not. */
  if (!g_utf8_validate (*out, -1, NULL)) {
    r->error = g_strdup_printf ("field \"%s\": invalid UTF-8", name);
    return FALSE;
  }
  return TRUE;
}

/* The range check of a slot read with req_int: it comes after every field's type check. */
static gboolean
slot_in_range (DsShim *shim, DsRequest *r, gint64 v, gint *slot)
{
  if (v < 0 || v >= (gint64) shim->n_slots) {
    r->error = g_strdup_printf ("slot %" G_GINT64_FORMAT " out of range (0..%d)", v,
        (gint) shim->n_slots - 1);
    return FALSE;
  }
  *slot = (gint) v;
  return TRUE;
}

static gboolean
req_slot (DsShim *shim, DsRequest *r, gint *slot)
{
  gint64 v;

  return req_int (r, "slot", &v) && slot_in_range (shim, r, v, slot);
}

static void
reply_gerror (DsShim *shim, DsRequest *r, GError *err)
{
  reply_error (shim, r->id, err != NULL ? err->message : "refused by the engine");
  g_clear_error (&err);
}

static void
op_hello (DsShim *shim, DsRequest *r)
{
  JsonBuilder *b = reply_begin (r->id, TRUE);

  member_bool (b, "ready", shim->ready);
  member_string (b, "engine", shim->vt.name);
  member_string (b, "version", shim->vt.version);
  member_int (b, "protocol", DS_SHIM_PROTOCOL_VERSION);
  member_int (b, "streams", shim->n_slots);
  member_string (b, "config_path", shim->config_path);
  json_builder_set_member_name (b, "gpu_ids");
  json_builder_begin_array (b);
  for (guint i = 0; i < shim->gpu_ids->len; i++)
    json_builder_add_int_value (b, g_array_index (shim->gpu_ids, gint, i));
  json_builder_end_array (b);
  reply_ok (shim, b);
}

static void
op_play (DsShim *shim, DsRequest *r)
{
  DsPlayRequest play = { 0 };
  gint64 slot, file_id;
  GError *err = NULL;

  /* Every missing or mistyped field first, then the slot's range (docs/engine-protocol.md). */
  if (!req_int (r, "slot", &slot) || !req_int (r, "file_id", &file_id) ||
      !req_string (r, "uri", FALSE, &play.uri) ||
      !req_opt_bool (r, "new_camera", &play.new_camera) ||
      !req_string (r, "output_path", TRUE, &play.output_path) ||
      !slot_in_range (shim, r, slot, &play.slot)) {
    reply_error (shim, r->id, r->error);
    return;
  }
  if (!shim->ready) {
    reply_error (shim, r->id, "engine not ready");
    return;
  }
  play.file_id = file_id;
  if (play.output_path != NULL && *play.output_path == '\0')
    play.output_path = NULL;
  if (!shim->vt.play (shim->engine, &play, &err)) {
    reply_gerror (shim, r, err);
    return;
  }
  reply_ok (shim, reply_begin (r->id, TRUE));
}

static void
op_stop (DsShim *shim, DsRequest *r)
{
  DsStopResult res = { 0 };
  GError *err = NULL;
  gint slot;
  JsonBuilder *b;

  if (!req_slot (shim, r, &slot)) {
    reply_error (shim, r->id, r->error);
    return;
  }
  if (!shim->vt.stop (shim->engine, slot, &res, &err)) {
    reply_gerror (shim, r, err);
    return;
  }
  b = reply_begin (r->id, TRUE);
  member_bool (b, "was_playing", res.was_playing);
  if (res.was_playing) {
    member_int (b, "file_id", res.file_id);
    member_uint (b, "frames", res.frames);
  }
  reply_ok (shim, b);
}

static void
op_reset (DsShim *shim, DsRequest *r)
{
  GError *err = NULL;
  gint slot;

  if (!req_slot (shim, r, &slot)) {
    reply_error (shim, r->id, r->error);
    return;
  }
  if (!shim->vt.reset (shim->engine, slot, &err)) {
    reply_gerror (shim, r, err);
    return;
  }
  reply_ok (shim, reply_begin (r->id, TRUE));
}

static void
member_opt_ns (JsonBuilder *b, const gchar *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  if (v < 0)
    json_builder_add_null_value (b);
  else
    json_builder_add_int_value (b, v);
}

static void
op_progress (DsShim *shim, DsRequest *r)
{
  JsonBuilder *b = reply_begin (r->id, TRUE);

  json_builder_set_member_name (b, "slots");
  json_builder_begin_array (b);
  for (guint i = 0; i < shim->n_slots; i++) {
    DsSlotProgress p = { .position_ns = -1, .duration_ns = -1 };

    shim->vt.progress (shim->engine, (gint) i, &p);
    json_builder_begin_object (b);
    member_int (b, "slot", i);
    member_string (b, "state", p.state == DS_SLOT_PLAYING ? "playing" : "idle");
    json_builder_set_member_name (b, "file_id");
    if (p.state == DS_SLOT_PLAYING && p.has_file)
      json_builder_add_int_value (b, p.file_id);
    else
      json_builder_add_null_value (b);
    member_opt_ns (b, "position_ns", p.position_ns);
    member_opt_ns (b, "duration_ns", p.duration_ns);
    member_uint (b, "frames", p.frames);
    member_uint (b, "camera_frames", p.camera_frames);
    if (p.state == DS_SLOT_PLAYING && p.live.active) {
      json_builder_set_member_name (b, "live");
      json_builder_begin_object (b);
      member_string (b, "state", p.live.state != NULL ? p.live.state : "connecting");
      json_builder_set_member_name (b, "fps");
      json_builder_add_double_value (b, p.live.fps);
      member_opt_ns (b, "last_frame_age_ms", p.live.last_frame_age_ms);
      member_uint (b, "reconnects", p.live.reconnects);
      json_builder_end_object (b);
    }
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  reply_ok (shim, b);
}

static gboolean
shim_on_shutdown (gpointer user_data)
{
  DsShim *shim = user_data;

  g_clear_pointer (&shim->shutdown_source, g_source_unref);
  if (!shim->shutdown_called) {
    shim->shutdown_called = TRUE;
    shim->vt.shutdown (shim->engine);
  }
  return G_SOURCE_REMOVE;
}

static void
shim_schedule_shutdown (DsShim *shim, guint delay_ms)
{
  if (shim->shutdown_source != NULL) {
    g_source_destroy (shim->shutdown_source);
    g_source_unref (shim->shutdown_source);
  }
  shim->shutdown_source = delay_ms > 0 ? g_timeout_source_new (delay_ms) : g_idle_source_new ();
  g_source_set_callback (shim->shutdown_source, shim_on_shutdown, shim, NULL);
  g_source_attach (shim->shutdown_source, shim->context);
}

static void
op_shutdown (DsShim *shim, DsRequest *r)
{
  DsClient *c = shim->client;

  reply_ok (shim, reply_begin (r->id, TRUE));
  shim->shutdown_requested = TRUE;
  if (c != NULL && !c->dead && c->out->len > 0) {
    /* Wait for the reply to drain (client_kill or the flush ends the wait). */
    c->closing = TRUE;
    shim_schedule_shutdown (shim, DS_SHIM_SHUTDOWN_FLUSH_MS);
  } else {
    shim_schedule_shutdown (shim, 0);
  }
}

static const struct {
  const gchar *name;
  void (*handle) (DsShim *, DsRequest *);
} ops[] = {
  { "hello", op_hello },
  { "play", op_play },
  { "stop", op_stop },
  { "reset", op_reset },
  { "progress", op_progress },
  { "shutdown", op_shutdown },
};

/* Does the integer in s[0..n) (base 2, 8, 10 or 16; it ends at the first character that is
 * not a digit of the base) lie beyond int64? */
static gboolean
int_token_overflows (const gchar *s, gsize n, guint base, gboolean negative)
{
  const guint64 limit = negative ? (guint64) G_MAXINT64 + 1 : (guint64) G_MAXINT64;
  guint64 v = 0;

  for (gsize k = 0; k < n; k++) {
    gint d = g_ascii_xdigit_value (s[k]);

    if (d < 0 || (guint) d >= base)
      break; /* the parser rejects what follows */
    if (v > (limit - (guint64) d) / base)
      return TRUE;
    v = v * base + (guint64) d;
  }
  return FALSE;
}

static gboolean
is_ident_char (gchar ch)
{
  return g_ascii_isalnum (ch) || ch == '_' || ch == '-';
}

/* Skips a \u escape's hex digits as json-glib's scanner does: up to 4 characters, the
 * first non-hex one included. Returns the index after them; *value gets the code unit. */
static gsize
skip_unichar (const gchar *line, gsize len, gsize i, guint *value)
{
  *value = 0;
  for (gint k = 0; k < 4 && i < len; k++) {
    gint d = g_ascii_xdigit_value (line[i++]);

    if (d < 0)
      break;
    *value |= (guint) d << ((3 - k) * 4);
  }
  return i;
}

/* One pass over a line before json-glib parses it, for what json-glib gets wrong:
 * nesting deeper than DS_SHIM_MAX_DEPTH (its recursive parser would overflow the stack)
 * and integers beyond int64 (it hands back a wrapped value). Returns the error, or NULL;
 * anything else malformed is left to the parser.
 *
 * Strings and comments are skipped exactly as json-glib 1.6's scanner reads them (it also
 * takes 'single-quoted' strings, /comments/ between slashes, $hex, 0x hex, 0b binary and
 * 0-prefixed octal integers): a bracket it would parse must never be taken for text. */
static const gchar *
precheck_line (const gchar *line, gsize len)
{
  guint depth = 0;
  gsize i = 0;

  while (i < len) {
    gchar ch = line[i];

    if (ch == '"') {
      for (i++; i < len && line[i] != '"'; ) {
        guint unit;

        if (line[i++] != '\\' || i >= len)
          continue;
        if (line[i++] != 'u' || i >= len || !g_ascii_isxdigit (line[i]))
          continue;
        i = skip_unichar (line, len, i, &unit);
        /* A surrogate: the scanner takes the next two characters as `\u` unseen. */
        if (unit >= 0xd800 && unit <= 0xdfff && i < len && line[i++] == '\\' && i < len &&
            line[i++] == 'u')
          i = skip_unichar (line, len, i, &unit);
      }
      i++;
    } else if (ch == '\'' || ch == '/') {
      const gchar *end = memchr (line + i + 1, ch, len - i - 1);

      i = end != NULL ? (gsize) (end - line) + 1 : len;
    } else if (g_ascii_isalpha (ch) || ch == '_') {
      while (i < len && is_ident_char (line[i]))
        i++;
    } else if (ch == '[' || ch == '{') {
      if (++depth > DS_SHIM_MAX_DEPTH)
        return "malformed JSON: nesting too deep";
      i++;
    } else if (ch == ']' || ch == '}') {
      if (depth > 0)
        depth--;
      i++;
    } else if (g_ascii_isdigit (ch) || ch == '$' || ch == '.') {
      gsize digits = i, k = i;
      guint base = 10;
      gboolean fraction = ch == '.';
      gboolean negative = FALSE;

      if (ch == '$') {
        base = 16;
        digits = i + 1;
      } else if (ch == '0' && i + 1 < len && (line[i + 1] == 'x' || line[i + 1] == 'X')) {
        base = 16;
        digits = i + 2;
      } else if (ch == '0' && i + 1 < len && (line[i + 1] == 'b' || line[i + 1] == 'B')) {
        base = 2;
        digits = i + 2;
      } else if (ch == '0') {
        base = 8;
      }
      for (i = digits; i < len; i++) {
        gchar c = line[i];

        if (c == '.' || (base != 16 && (c == 'e' || c == 'E')))
          fraction = TRUE;
        else if ((c == '+' || c == '-') && base != 16 && i > digits &&
            (line[i - 1] == 'e' || line[i - 1] == 'E'))
          continue;
        else if (!g_ascii_isalnum (c))
          break;
      }
      /* The parser reads `-` as a token of its own, blanks may follow it. */
      while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t' || line[k - 1] == '\r'))
        k--;
      negative = k > 0 && line[k - 1] == '-';
      if (!fraction && int_token_overflows (line + digits, i - digits, base, negative))
        return "malformed JSON: integer out of range";
    } else {
      i++;
    }
  }
  return NULL;
}

static void
shim_handle_line (DsShim *shim, const gchar *line, gsize len)
{
  JsonParser *parser;
  GError *err = NULL;
  JsonNode *root, *op_node;
  DsRequest r = { 0 };
  const gchar *op;
  const gchar *bad_utf8;
  const gchar *pre_error;

  if (memchr (line, '\0', len) != NULL) {
    reply_error (shim, NULL, "malformed JSON: NUL byte in line");
    return;
  }
  if (!g_utf8_validate (line, (gssize) len, &bad_utf8)) {
    gchar *msg = g_strdup_printf ("malformed JSON: invalid UTF-8 at byte %" G_GSIZE_FORMAT,
        (gsize) (bad_utf8 - line));
    reply_error (shim, NULL, msg);
    g_free (msg);
    return;
  }
  if ((pre_error = precheck_line (line, len)) != NULL) {
    reply_error (shim, NULL, pre_error);
    return;
  }
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, line, (gssize) len, &err) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    /* json-glib quotes the offending input in its message, raw: a decoded lone
     * surrogate there would make the reply itself invalid UTF-8. */
    gchar *why = g_utf8_make_valid (err != NULL ? err->message : "not an object", -1);
    gchar *msg = g_strdup_printf ("malformed JSON: %s", why);
    reply_error (shim, NULL, msg);
    g_free (msg);
    g_free (why);
    g_clear_error (&err);
    g_object_unref (parser);
    return;
  }
  r.obj = json_node_get_object (root);
  r.id = json_object_get_member (r.obj, "id");
  /* String ids and ops must be valid UTF-8: json-glib decodes a lone surrogate escape
   * ("\ud800") into bytes that are not, and an id is echoed back verbatim. */
  if (!value_is (r.id, G_TYPE_INT64) &&
      !(value_is (r.id, G_TYPE_STRING) && g_utf8_validate (json_node_get_string (r.id), -1, NULL))) {
    reply_error (shim, NULL, "missing or invalid id");
    g_object_unref (parser);
    return;
  }
  op_node = json_object_get_member (r.obj, "op");
  op = value_is (op_node, G_TYPE_STRING) ? json_node_get_string (op_node) : NULL;
  if (op != NULL && !g_utf8_validate (op, -1, NULL))
    op = NULL;
  for (guint i = 0; op != NULL && i < G_N_ELEMENTS (ops); i++) {
    if (strcmp (op, ops[i].name) == 0) {
      ops[i].handle (shim, &r);
      g_free (r.error);
      g_object_unref (parser);
      return;
    }
  }
  if (op == NULL) {
    reply_error (shim, r.id, "missing or invalid op");
  } else {
    JsonBuilder *b = reply_begin (r.id, FALSE);
    gchar *shown = g_utf8_substring (op, 0, MIN (g_utf8_strlen (op, -1), 64));
    gchar *msg = g_strdup_printf ("unknown op \"%s\"", shown);

    member_string (b, "error", msg);
    json_builder_end_object (b);
    reply_send (shim, b);
    g_free (msg);
    g_free (shown);
  }
  g_object_unref (parser);
}

/* Handles one request, then sends the events it caused after its reply. */
static void
shim_dispatch_line (DsShim *shim, const gchar *line, gsize len)
{
  shim->dispatching = TRUE;
  shim_handle_line (shim, line, len);
  shim->dispatching = FALSE;
  for (guint i = 0; i < shim->deferred->len; i++) {
    if (shim->client != NULL)
      client_send_line (shim->client, g_ptr_array_index (shim->deferred, i));
  }
  g_ptr_array_set_size (shim->deferred, 0);
}

/* ---------- input ---------- */

/* Handles every complete line in c->in. FALSE: stop reading (client closing/dead). */
static gboolean
client_process_input (DsClient *c)
{
  DsShim *shim = c->shim;
  gsize start = 0;

  while (!c->dead && !c->closing && !shim->shutdown_requested) {
    const guint8 *nl = memchr (c->in->data + c->scanned, '\n', c->in->len - c->scanned);
    gsize len;

    if (nl == NULL) {
      c->scanned = c->in->len;
      break;
    }
    len = (gsize) (nl - c->in->data) - start;
    if (len > DS_SHIM_MAX_LINE)
      break; /* reported below */
    {
      gsize body = len;
      if (body > 0 && c->in->data[start + body - 1] == '\r')
        body--;
      shim_dispatch_line (shim, (const gchar *) c->in->data + start, body);
    }
    start += len + 1;
    c->scanned = start;
  }
  if (start > 0) {
    g_byte_array_remove_range (c->in, 0, (guint) start);
    c->scanned -= start;
  }
  if (c->dead || shim->shutdown_requested)
    return FALSE;
  if (c->closing)
    return FALSE;
  /* Whatever is left holds no newline within its first c->scanned bytes. */
  if (c->in->len > DS_SHIM_MAX_LINE) {
    const guint8 *nl = memchr (c->in->data, '\n', c->in->len);
    if (nl == NULL || (gsize) (nl - c->in->data) > DS_SHIM_MAX_LINE) {
      gchar *msg = g_strdup_printf ("line too long (max %d bytes)", DS_SHIM_MAX_LINE);

      reply_error (shim, NULL, msg);
      g_free (msg);
      c->closing = TRUE;
      g_byte_array_set_size (c->in, 0);
      c->scanned = 0;
      client_maybe_close (c);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
client_on_readable (GSocket *socket, GIOCondition cond, gpointer user_data)
{
  DsClient *c = user_data;
  guint8 buf[64 * 1024];
  gboolean keep = TRUE;
  (void) socket;
  (void) cond;

  c->busy++;
  for (guint reads = 0; reads < DS_SHIM_READS_PER_DISPATCH; reads++) {
    GError *err = NULL;
    gssize n = g_socket_receive (c->socket, (gchar *) buf, sizeof buf, NULL, &err);

    if (n < 0) {
      if (!g_error_matches (err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
        g_debug ("client read failed: %s", err->message);
        client_kill (c, "read failed");
        keep = FALSE;
      }
      g_error_free (err);
      break;
    }
    if (n == 0) {
      if (c->in->len > 0)
        g_debug ("client closed mid-line, %u bytes dropped", c->in->len);
      client_kill (c, "end of stream");
      keep = FALSE;
      break;
    }
    g_byte_array_append (c->in, buf, (guint) n);
    if (!client_process_input (c)) {
      keep = FALSE;
      break;
    }
  }
  if (!keep && c->in_source != NULL) {
    /* Closing: read nothing more, the writer finishes the job. */
    g_source_destroy (c->in_source);
    g_source_unref (c->in_source);
    c->in_source = NULL;
  }
  client_release (c);
  return keep ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* ---------- listener ---------- */

static void
reject_client (GSocket *sock)
{
  static const gchar line[] = "{\"event\":\"rejected\",\"error\":\"another client is connected\"}\n";

  /* Best effort: a fresh socket's buffer always takes one short line. */
  g_socket_send (sock, line, sizeof line - 1, NULL, NULL);
  g_socket_close (sock, NULL);
}

static gboolean
shim_on_accept (GSocket *listener, GIOCondition cond, gpointer user_data)
{
  DsShim *shim = user_data;
  (void) cond;

  for (;;) {
    GError *err = NULL;
    GSocket *sock = g_socket_accept (listener, NULL, &err);
    DsClient *c;

    if (sock == NULL) {
      if (!g_error_matches (err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        g_warning ("accept failed: %s", err->message);
      g_error_free (err);
      break;
    }
    g_socket_set_blocking (sock, FALSE);
    /* A client that just hung up may not have been noticed yet: a quick reconnect
     * must not be rejected because of it. */
    if (shim->client != NULL && shim->client->in_source != NULL &&
        g_socket_condition_check (shim->client->socket, G_IO_IN | G_IO_HUP | G_IO_ERR) != 0)
      client_on_readable (shim->client->socket, G_IO_IN, shim->client);
    if (shim->client != NULL || shim->shutdown_requested) {
      g_debug ("second client rejected");
      reject_client (sock);
      g_object_unref (sock);
      continue;
    }
    c = g_new0 (DsClient, 1);
    c->shim = shim;
    c->socket = sock;
    c->in = g_byte_array_new ();
    c->out = g_byte_array_new ();
    c->in_source = g_socket_create_source (sock, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
    g_source_set_callback (c->in_source, G_SOURCE_FUNC (client_on_readable), c, NULL);
    g_source_attach (c->in_source, shim->context);
    shim->client = c;
    g_debug ("client connected");
    if (shim->ready)
      shim_send_ready (shim);
  }
  return G_SOURCE_CONTINUE;
}

DsShim *
ds_shim_new (const DsEngineVTable *vtable, gpointer engine, guint n_slots,
    const gchar *config_path, const gint *gpu_ids, guint n_gpu_ids)
{
  DsShim *shim = g_new0 (DsShim, 1);
  static const gint default_gpu = 0;

  g_return_val_if_fail (vtable != NULL && config_path != NULL, NULL);
  shim->vt = *vtable;
  shim->engine = engine;
  shim->n_slots = n_slots;
  shim->config_path = g_strdup (config_path);
  shim->gpu_ids = g_array_new (FALSE, FALSE, sizeof (gint));
  if (gpu_ids != NULL && n_gpu_ids > 0)
    g_array_append_vals (shim->gpu_ids, gpu_ids, n_gpu_ids);
  else
    g_array_append_val (shim->gpu_ids, default_gpu);
  shim->deferred = g_ptr_array_new_with_free_func (g_free);
  return shim;
}

gboolean
ds_shim_start (DsShim *shim, const gchar *socket_path, GError **error)
{
  GSocketAddress *addr;
  GSocket *sock;
  mode_t old_mask;
  gboolean ok;

  g_return_val_if_fail (shim->listener == NULL, FALSE);
  sock = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
      error);
  if (sock == NULL)
    return FALSE;
  if (unlink (socket_path) != 0 && errno != ENOENT) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
        "cannot replace %s: %s", socket_path, g_strerror (errno));
    g_object_unref (sock);
    return FALSE;
  }
  addr = g_unix_socket_address_new (socket_path);
  /* The socket file is born 0600: no window where others could connect. */
  old_mask = umask (0177);
  ok = g_socket_bind (sock, addr, FALSE, error);
  umask (old_mask);
  g_object_unref (addr);
  if (ok)
    ok = g_socket_listen (sock, error);
  if (!ok) {
    g_object_unref (sock);
    return FALSE;
  }
  g_socket_set_blocking (sock, FALSE);
  shim->socket_path = g_strdup (socket_path);
  shim->listener = sock;
  shim->context = g_main_context_ref_thread_default ();
  shim->listen_source = g_socket_create_source (sock, G_IO_IN, NULL);
  g_source_set_callback (shim->listen_source, G_SOURCE_FUNC (shim_on_accept), shim, NULL);
  g_source_attach (shim->listen_source, shim->context);
  g_debug ("listening on %s", socket_path);
  return TRUE;
}

void
ds_shim_free (DsShim *shim)
{
  if (shim == NULL)
    return;
  if (shim->client != NULL) {
    client_flush (shim->client);
    if (shim->client != NULL)
      client_kill (shim->client, "shim freed");
  }
  if (shim->shutdown_source != NULL) {
    g_source_destroy (shim->shutdown_source);
    g_source_unref (shim->shutdown_source);
  }
  if (shim->listen_source != NULL) {
    g_source_destroy (shim->listen_source);
    g_source_unref (shim->listen_source);
  }
  if (shim->listener != NULL) {
    g_socket_close (shim->listener, NULL);
    g_object_unref (shim->listener);
    unlink (shim->socket_path);
  }
  if (shim->context != NULL)
    g_main_context_unref (shim->context);
  g_ptr_array_unref (shim->deferred);
  g_array_unref (shim->gpu_ids);
  g_free (shim->socket_path);
  g_free (shim->config_path);
  g_free (shim);
}
