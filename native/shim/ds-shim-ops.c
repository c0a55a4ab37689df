/* ds-shim-ops: the operations of docs/engine-protocol.md: each reads its fields (every
 * missing or mistyped field first, then the slot's range), asks the engine and replies. */
#include "ds-shim-private.h"

#include <string.h>

static gboolean
req_int (DsRequest *r, const gchar *name, gint64 *out)
{
  JsonNode *n = json_object_get_member (r->obj, name);

  if (!ds_shim_value_is (n, G_TYPE_INT64)) {
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
  if (!ds_shim_value_is (n, G_TYPE_BOOLEAN)) {
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
  if (!ds_shim_value_is (n, G_TYPE_STRING)) {
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
  ds_shim_reply_error (shim, r->id, err != NULL ? err->message : "refused by the engine");
  g_clear_error (&err);
}

static void
op_hello (DsShim *shim, DsRequest *r)
{
  JsonBuilder *b = ds_shim_reply_begin (r->id, TRUE);

  ds_shim_member_bool (b, "ready", shim->ready);
  ds_shim_member_string (b, "engine", shim->vt.name);
  ds_shim_member_string (b, "version", shim->vt.version);
  ds_shim_member_int (b, "protocol", DS_SHIM_PROTOCOL_VERSION);
  ds_shim_member_int (b, "streams", shim->n_slots);
  ds_shim_member_string (b, "config_path", shim->config_path);
  json_builder_set_member_name (b, "gpu_ids");
  json_builder_begin_array (b);
  for (guint i = 0; i < shim->gpu_ids->len; i++)
    json_builder_add_int_value (b, g_array_index (shim->gpu_ids, gint, i));
  json_builder_end_array (b);
  ds_shim_reply_ok (shim, b);
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
    ds_shim_reply_error (shim, r->id, r->error);
    return;
  }
  if (!shim->ready) {
    ds_shim_reply_error (shim, r->id, "engine not ready");
    return;
  }
  play.file_id = file_id;
  if (play.output_path != NULL && *play.output_path == '\0')
    play.output_path = NULL;
  if (!shim->vt.play (shim->engine, &play, &err)) {
    reply_gerror (shim, r, err);
    return;
  }
  ds_shim_reply_ok (shim, ds_shim_reply_begin (r->id, TRUE));
}

static void
op_stop (DsShim *shim, DsRequest *r)
{
  DsStopResult res = { 0 };
  GError *err = NULL;
  gint slot;
  JsonBuilder *b;

  if (!req_slot (shim, r, &slot)) {
    ds_shim_reply_error (shim, r->id, r->error);
    return;
  }
  if (!shim->vt.stop (shim->engine, slot, &res, &err)) {
    reply_gerror (shim, r, err);
    return;
  }
  b = ds_shim_reply_begin (r->id, TRUE);
  ds_shim_member_bool (b, "was_playing", res.was_playing);
  if (res.was_playing) {
    ds_shim_member_int (b, "file_id", res.file_id);
    ds_shim_member_uint (b, "frames", res.frames);
  }
  ds_shim_reply_ok (shim, b);
}

static void
op_reset (DsShim *shim, DsRequest *r)
{
  GError *err = NULL;
  gint slot;

  if (!req_slot (shim, r, &slot)) {
    ds_shim_reply_error (shim, r->id, r->error);
    return;
  }
  if (!shim->vt.reset (shim->engine, slot, &err)) {
    reply_gerror (shim, r, err);
    return;
  }
  ds_shim_reply_ok (shim, ds_shim_reply_begin (r->id, TRUE));
}

static void
op_progress (DsShim *shim, DsRequest *r)
{
  JsonBuilder *b = ds_shim_reply_begin (r->id, TRUE);

  json_builder_set_member_name (b, "slots");
  json_builder_begin_array (b);
  for (guint i = 0; i < shim->n_slots; i++) {
    DsSlotProgress p = { .position_ns = -1, .duration_ns = -1 };

    shim->vt.progress (shim->engine, (gint) i, &p);
    json_builder_begin_object (b);
    ds_shim_member_int (b, "slot", i);
    ds_shim_member_string (b, "state", p.state == DS_SLOT_PLAYING ? "playing" : "idle");
    json_builder_set_member_name (b, "file_id");
    if (p.state == DS_SLOT_PLAYING && p.has_file)
      json_builder_add_int_value (b, p.file_id);
    else
      json_builder_add_null_value (b);
    ds_shim_member_opt_ns (b, "position_ns", p.position_ns);
    ds_shim_member_opt_ns (b, "duration_ns", p.duration_ns);
    ds_shim_member_uint (b, "frames", p.frames);
    ds_shim_member_uint (b, "camera_frames", p.camera_frames);
    if (p.state == DS_SLOT_PLAYING && p.live.active) {
      json_builder_set_member_name (b, "live");
      json_builder_begin_object (b);
      ds_shim_member_string (b, "state", p.live.state != NULL ? p.live.state : "connecting");
      json_builder_set_member_name (b, "fps");
      json_builder_add_double_value (b, p.live.fps);
      ds_shim_member_opt_ns (b, "last_frame_age_ms", p.live.last_frame_age_ms);
      ds_shim_member_uint (b, "reconnects", p.live.reconnects);
      json_builder_end_object (b);
    }
    json_builder_end_object (b);
  }
  json_builder_end_array (b);
  ds_shim_reply_ok (shim, b);
}

static void
op_shutdown (DsShim *shim, DsRequest *r)
{
  DsClient *c = shim->client;

  ds_shim_reply_ok (shim, ds_shim_reply_begin (r->id, TRUE));
  shim->shutdown_requested = TRUE;
  if (c != NULL && !c->dead && c->out->len > 0) {
    /* Wait for the reply to drain (ds_shim_client_kill or the flush ends the wait). */
    c->closing = TRUE;
    ds_shim_schedule_shutdown (shim, DS_SHIM_SHUTDOWN_FLUSH_MS);
  } else {
    ds_shim_schedule_shutdown (shim, 0);
  }
}

static const struct {
  const gchar *name;
  DsShimOp handle;
} ops[] = {
  { "hello", op_hello },
  { "play", op_play },
  { "stop", op_stop },
  { "reset", op_reset },
  { "progress", op_progress },
  { "shutdown", op_shutdown },
};

DsShimOp
ds_shim_op_find (const gchar *name)
{
  for (guint i = 0; name != NULL && i < G_N_ELEMENTS (ops); i++) {
    if (strcmp (name, ops[i].name) == 0)
      return ops[i].handle;
  }
  return NULL;
}
