/* ds-shim: the JSON-lines control socket (docs/engine-protocol.md): the listener, the
 * one client it accepts, ready and shutdown. The rest of the shim is listed in
 * ds-shim-private.h. */
#include "ds-shim-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>

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

void
ds_shim_schedule_shutdown (DsShim *shim, guint delay_ms)
{
  if (shim->shutdown_source != NULL) {
    g_source_destroy (shim->shutdown_source);
    g_source_unref (shim->shutdown_source);
  }
  shim->shutdown_source = delay_ms > 0 ? g_timeout_source_new (delay_ms) : g_idle_source_new ();
  g_source_set_callback (shim->shutdown_source, shim_on_shutdown, shim, NULL);
  g_source_attach (shim->shutdown_source, shim->context);
}

void
ds_shim_set_ready (DsShim *shim)
{
  if (shim->ready)
    return;
  shim->ready = TRUE;
  ds_shim_send_ready (shim);
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

    if (sock == NULL) {
      if (!g_error_matches (err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        g_warning ("accept failed: %s", err->message);
      g_error_free (err);
      break;
    }
    g_socket_set_blocking (sock, FALSE);
    /* A client that just hung up may not have been noticed yet: a quick reconnect
     * must not be rejected because of it. */
    if (shim->client != NULL)
      ds_shim_client_poll (shim->client);
    if (shim->client != NULL || shim->shutdown_requested) {
      g_debug ("second client rejected");
      reject_client (sock);
      g_object_unref (sock);
      continue;
    }
    shim->client = ds_shim_client_new (shim, sock);
    g_debug ("client connected");
    if (shim->ready)
      ds_shim_send_ready (shim);
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
    ds_shim_client_flush (shim->client);
    if (shim->client != NULL)
      ds_shim_client_kill (shim->client, "shim freed");
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
