/* ds-shim-private.h: what the shim's files share (ds-shim.h is the engines' view).
 *
 *   ds-shim.c          the DsShim: listener socket, accepting the one client, ready,
 *                      shutdown, free
 *   ds-shim-client.c   one client connection: non-blocking reads split into lines,
 *                      buffered writes flushed as the socket takes them
 *   ds-shim-request.c  a request line: parsed, its id and op checked, dispatched, replied
 *                      to; the events it caused sent after the reply
 *   ds-shim-precheck.c what json-glib gets wrong, checked on the raw line first
 *   ds-shim-ops.c      the operations (docs/engine-protocol.md) and their fields
 *   ds-shim-events.c   the events an engine emits
 *
 * Everything runs on the one GLib main context the shim was started on. */
#ifndef DS_SHIM_PRIVATE_H
#define DS_SHIM_PRIVATE_H

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "ds-shim.h"

G_BEGIN_DECLS

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

typedef struct {
  JsonObject *obj;
  JsonNode *id; /* NULL = reply with "id": null */
  gchar *error; /* set by a failed field lookup */
} DsRequest;

/* ---------- ds-shim.c ---------- */

/* Calls the engine's shutdown after delay_ms (0: at the next idle), once. */
void ds_shim_schedule_shutdown (DsShim *shim, guint delay_ms);

/* ---------- ds-shim-client.c ---------- */

/* The client on sock (non-blocking), reading on the shim's context. */
DsClient *ds_shim_client_new (DsShim *shim, GSocket *sock);
/* Reads what is pending now: a client that just hung up is noticed. */
void ds_shim_client_poll (DsClient *c);
/* Queues line and a newline; sends what the socket takes now. */
void ds_shim_client_send_line (DsClient *c, const gchar *line);
/* Sends as much buffered output as the socket takes now. FALSE: client killed. */
gboolean ds_shim_client_flush (DsClient *c);
/* Closes the connection; the shim has no client afterwards. */
void ds_shim_client_kill (DsClient *c, const gchar *why);

/* ---------- ds-shim-request.c ---------- */

/* Handles one request line, then sends the events it caused after its reply. */
void ds_shim_dispatch_line (DsShim *shim, const gchar *line, gsize len);
/* A reply object begun: {"id": id, "ok": ok, … */
JsonBuilder *ds_shim_reply_begin (JsonNode *id, gboolean ok);
/* Ends the object and sends it (consumes b). */
void ds_shim_reply_ok (DsShim *shim, JsonBuilder *b);
void ds_shim_reply_error (DsShim *shim, JsonNode *id, const gchar *msg);
void ds_shim_reply_send (DsShim *shim, JsonBuilder *b);

/* ---------- ds-shim-ops.c ---------- */

typedef void (*DsShimOp) (DsShim *shim, DsRequest *r);
/* The handler of op `name`, NULL when there is none. */
DsShimOp ds_shim_op_find (const gchar *name);

/* ---------- ds-shim-precheck.c ---------- */

/* The error of a line json-glib must not parse, or NULL. */
const gchar *ds_shim_precheck_line (const gchar *line, gsize len);

/* ---------- ds-shim-events.c ---------- */

void ds_shim_send_ready (DsShim *shim);

/* ---------- JSON helpers ---------- */

/* The builder's object as one line (b is not consumed). */
static inline gchar *
ds_shim_json_line (JsonBuilder *b)
{
  JsonNode *root = json_builder_get_root (b);
  JsonGenerator *gen = json_generator_new ();
  gchar *s;

  json_generator_set_root (gen, root);
  s = json_generator_to_data (gen, NULL);
  g_object_unref (gen);
  json_node_unref (root);
  return s;
}

static inline gboolean
ds_shim_value_is (JsonNode *node, GType type)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == type;
}

static inline void
ds_shim_member_int (JsonBuilder *b, const gchar *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, v);
}

static inline void
ds_shim_member_uint (JsonBuilder *b, const gchar *name, guint64 v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_int_value (b, (gint64) MIN (v, (guint64) G_MAXINT64));
}

static inline void
ds_shim_member_bool (JsonBuilder *b, const gchar *name, gboolean v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_boolean_value (b, v);
}

static inline void
ds_shim_member_string (JsonBuilder *b, const gchar *name, const gchar *v)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, v);
}

static inline void
ds_shim_member_opt_ns (JsonBuilder *b, const gchar *name, gint64 v)
{
  json_builder_set_member_name (b, name);
  if (v < 0)
    json_builder_add_null_value (b);
  else
    json_builder_add_int_value (b, v);
}

G_END_DECLS

#endif /* DS_SHIM_PRIVATE_H */
