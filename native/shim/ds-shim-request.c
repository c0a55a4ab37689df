/* ds-shim-request: one request line, from raw bytes to its reply (ds-shim-private.h). */
#include "ds-shim-private.h"

#include <string.h>

void
ds_shim_reply_send (DsShim *shim, JsonBuilder *b)
{
  gchar *line = ds_shim_json_line (b);

  g_object_unref (b);
  if (shim->client != NULL)
    ds_shim_client_send_line (shim->client, line);
  g_free (line);
}

JsonBuilder *
ds_shim_reply_begin (JsonNode *id, gboolean ok)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  if (id != NULL)
    json_builder_add_value (b, json_node_copy (id));
  else
    json_builder_add_null_value (b);
  ds_shim_member_bool (b, "ok", ok);
  return b;
}

void
ds_shim_reply_error (DsShim *shim, JsonNode *id, const gchar *msg)
{
  JsonBuilder *b = ds_shim_reply_begin (id, FALSE);

  ds_shim_member_string (b, "error", msg);
  json_builder_end_object (b);
  ds_shim_reply_send (shim, b);
}

void
ds_shim_reply_ok (DsShim *shim, JsonBuilder *b)
{
  json_builder_end_object (b);
  ds_shim_reply_send (shim, b);
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
  DsShimOp handle;

  if (memchr (line, '\0', len) != NULL) {
    ds_shim_reply_error (shim, NULL, "malformed JSON: NUL byte in line");
    return;
  }
  if (!g_utf8_validate (line, (gssize) len, &bad_utf8)) {
    gchar *msg = g_strdup_printf ("malformed JSON: invalid UTF-8 at byte %" G_GSIZE_FORMAT,
        (gsize) (bad_utf8 - line));
    ds_shim_reply_error (shim, NULL, msg);
    g_free (msg);
    return;
  }
  if ((pre_error = ds_shim_precheck_line (line, len)) != NULL) {
    ds_shim_reply_error (shim, NULL, pre_error);
    return;
  }
  parser = json_parser_new_immutable ();
  if (!json_parser_load_from_data (parser, line, (gssize) len, &err) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    /* json-glib quotes the offending input in its message, raw: a decoded lone
     * surrogate there would make the reply itself invalid UTF-8. */
    gchar *why = g_utf8_make_valid (err != NULL ? err->message : "not an object", -1);
    gchar *msg = g_strdup_printf ("malformed JSON: %s", why);
    ds_shim_reply_error (shim, NULL, msg);
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
  if (!ds_shim_value_is (r.id, G_TYPE_INT64) &&
      !(ds_shim_value_is (r.id, G_TYPE_STRING) && g_utf8_validate (json_node_get_string (r.id), -1, NULL))) {
    ds_shim_reply_error (shim, NULL, "missing or invalid id");
    g_object_unref (parser);
    return;
  }
  op_node = json_object_get_member (r.obj, "op");
  op = ds_shim_value_is (op_node, G_TYPE_STRING) ? json_node_get_string (op_node) : NULL;
  if (op != NULL && !g_utf8_validate (op, -1, NULL))
    op = NULL;
  handle = ds_shim_op_find (op);
  if (handle != NULL) {
    handle (shim, &r);
    g_free (r.error);
  } else if (op == NULL) {
    ds_shim_reply_error (shim, r.id, "missing or invalid op");
  } else {
    JsonBuilder *b = ds_shim_reply_begin (r.id, FALSE);
    gchar *shown = g_utf8_substring (op, 0, MIN (g_utf8_strlen (op, -1), 64));
    gchar *msg = g_strdup_printf ("unknown op \"%s\"", shown);

    ds_shim_member_string (b, "error", msg);
    json_builder_end_object (b);
    ds_shim_reply_send (shim, b);
    g_free (msg);
    g_free (shown);
  }
  g_object_unref (parser);
}

/* Handles one request, then sends the events it caused after its reply. */
void
ds_shim_dispatch_line (DsShim *shim, const gchar *line, gsize len)
{
  shim->dispatching = TRUE;
  shim_handle_line (shim, line, len);
  shim->dispatching = FALSE;
  for (guint i = 0; i < shim->deferred->len; i++) {
    if (shim->client != NULL)
      ds_shim_client_send_line (shim->client, g_ptr_array_index (shim->deferred, i));
  }
  g_ptr_array_set_size (shim->deferred, 0);
}
