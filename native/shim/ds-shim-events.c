/* ds-shim-events: the events an engine emits (ds-shim.h). One emitted while a request
 * is handled waits for that request's reply (ds_shim_dispatch_line sends it). */
#include "ds-shim-private.h"

static void
shim_send_event (DsShim *shim, JsonBuilder *b)
{
  gchar *line;

  line = ds_shim_json_line (b);
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
    ds_shim_client_send_line (shim->client, line);
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

void
ds_shim_emit_file_started (DsShim *shim, gint slot, gint64 file_id, gint64 mono_ns)
{
  JsonBuilder *b = event_begin ("file_started");

  ds_shim_member_int (b, "slot", slot);
  ds_shim_member_int (b, "file_id", file_id);
  ds_shim_member_int (b, "mono_ns", mono_ns);
  shim_send_event (shim, event_end (b));
}

void
ds_shim_emit_file_done (DsShim *shim, gint slot, gint64 file_id, guint64 frames,
    guint64 camera_frames, gint64 mono_ns)
{
  JsonBuilder *b = event_begin ("file_done");

  ds_shim_member_int (b, "slot", slot);
  ds_shim_member_int (b, "file_id", file_id);
  ds_shim_member_uint (b, "frames", frames);
  ds_shim_member_uint (b, "camera_frames", camera_frames);
  ds_shim_member_int (b, "mono_ns", mono_ns);
  shim_send_event (shim, event_end (b));
}

void
ds_shim_emit_file_error (DsShim *shim, gint slot, gint64 file_id, const gchar *error)
{
  JsonBuilder *b = event_begin ("file_error");

  ds_shim_member_int (b, "slot", slot);
  ds_shim_member_int (b, "file_id", file_id);
  ds_shim_member_string (b, "error", error != NULL ? error : "unknown error");
  shim_send_event (shim, event_end (b));
}

void
ds_shim_emit_stream_lost (DsShim *shim, gint slot, gint64 file_id, const gchar *reason,
    gboolean will_retry, guint attempt, gint64 retry_in_ms)
{
  JsonBuilder *b = event_begin ("stream_lost");

  ds_shim_member_int (b, "slot", slot);
  ds_shim_member_int (b, "file_id", file_id);
  ds_shim_member_string (b, "reason", reason != NULL ? reason : "unknown");
  ds_shim_member_bool (b, "will_retry", will_retry);
  ds_shim_member_int (b, "attempt", attempt);
  ds_shim_member_int (b, "retry_in_ms", will_retry ? retry_in_ms : 0);
  shim_send_event (shim, event_end (b));
}

void
ds_shim_emit_stream_resumed (DsShim *shim, gint slot, gint64 file_id, gint64 down_ms,
    guint attempts, gboolean tracker_kept)
{
  JsonBuilder *b = event_begin ("stream_resumed");

  ds_shim_member_int (b, "slot", slot);
  ds_shim_member_int (b, "file_id", file_id);
  ds_shim_member_int (b, "down_ms", down_ms);
  ds_shim_member_int (b, "attempts", attempts);
  ds_shim_member_bool (b, "tracker_kept", tracker_kept);
  shim_send_event (shim, event_end (b));
}

void
ds_shim_emit_fatal (DsShim *shim, const gchar *error)
{
  JsonBuilder *b = event_begin ("fatal");

  ds_shim_member_string (b, "error", error != NULL ? error : "unknown error");
  shim_send_event (shim, event_end (b));
  /* The engine exits right after: push the line out now if the socket takes it. */
  if (shim->client != NULL && !shim->dispatching)
    ds_shim_client_flush (shim->client);
}

void
ds_shim_send_ready (DsShim *shim)
{
  shim_send_event (shim, event_end (event_begin ("ready")));
}
