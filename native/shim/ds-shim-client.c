/* ds-shim-client: one client connection (ds-shim-private.h). Sockets are non-blocking:
 * input is accumulated until a newline, output is buffered and flushed when the socket is
 * writable, so a slow or stuck client never stalls the engine. */
#include "ds-shim-private.h"

#include <string.h>

static void client_maybe_close (DsClient *c);

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
gboolean
ds_shim_client_flush (DsClient *c)
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
      ds_shim_client_kill (c, "write failed");
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
  if (ds_shim_client_flush (c) && c->out->len == 0) {
    g_source_destroy (c->out_source);
    g_source_unref (c->out_source);
    c->out_source = NULL;
    client_maybe_close (c);
  }
  client_release (c);
  return G_SOURCE_CONTINUE;
}

void
ds_shim_client_send_line (DsClient *c, const gchar *line)
{
  if (c->dead)
    return;
  if (c->out->len - c->out_pos > DS_SHIM_MAX_OUTPUT) {
    ds_shim_client_kill (c, "client does not read its output");
    return;
  }
  g_byte_array_append (c->out, (const guint8 *) line, (guint) strlen (line));
  g_byte_array_append (c->out, (const guint8 *) "\n", 1);
  if (c->out_source != NULL)
    return; /* already waiting for the socket to drain */
  if (!ds_shim_client_flush (c))
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
    ds_shim_client_kill (c, "closed after error");
}

void
ds_shim_client_kill (DsClient *c, const gchar *why)
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
    ds_shim_schedule_shutdown (shim, 0);
  if (c->busy == 0)
    client_free (c);
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
      ds_shim_dispatch_line (shim, (const gchar *) c->in->data + start, body);
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

      ds_shim_reply_error (shim, NULL, msg);
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
        ds_shim_client_kill (c, "read failed");
        keep = FALSE;
      }
      g_error_free (err);
      break;
    }
    if (n == 0) {
      if (c->in->len > 0)
        g_debug ("client closed mid-line, %u bytes dropped", c->in->len);
      ds_shim_client_kill (c, "end of stream");
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

DsClient *
ds_shim_client_new (DsShim *shim, GSocket *sock)
{
  DsClient *c = g_new0 (DsClient, 1);

  c->shim = shim;
  c->socket = sock;
  c->in = g_byte_array_new ();
  c->out = g_byte_array_new ();
  c->in_source = g_socket_create_source (sock, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (c->in_source, G_SOURCE_FUNC (client_on_readable), c, NULL);
  g_source_attach (c->in_source, shim->context);
  return c;
}

void
ds_shim_client_poll (DsClient *c)
{
  if (c->in_source != NULL &&
      g_socket_condition_check (c->socket, G_IO_IN | G_IO_HUP | G_IO_ERR) != 0)
    client_on_readable (c->socket, G_IO_IN, c);
}
