/* ds-slot-gst: see ds-slot-gst.h. */
#include "ds-slot-gst.h"

#include <string.h>

#include "ds-live.h"

G_DEFINE_QUARK (ds-slot-index, slot_index)

void
ds_slot_tag_element (GstElement *element, guint index)
{
  g_return_if_fail (index != DS_SLOT_NONE);
  /* index + 1: a NULL datum means "not tagged". */
  g_object_set_qdata (G_OBJECT (element), slot_index_quark (),
      GUINT_TO_POINTER (index + 1));
}

guint
ds_slot_of_object (GstObject *obj)
{
  GstObject *cur = obj != NULL ? gst_object_ref (obj) : NULL;

  while (cur != NULL) {
    guint tag = GPOINTER_TO_UINT (g_object_get_qdata (G_OBJECT (cur), slot_index_quark ()));
    GstObject *parent;

    if (tag != 0) {
      gst_object_unref (cur);
      return tag - 1;
    }
    parent = gst_object_get_parent (cur);
    gst_object_unref (cur);
    cur = parent;
  }
  return DS_SLOT_NONE;
}

void
ds_slot_on_source_setup (GstElement *decodebin, GstElement *source, gpointer options)
{
  const DsLiveOptions *opts = options;
  GstElementFactory *f = gst_element_get_factory (source);

  (void) decodebin;
  if (f == NULL || g_strcmp0 (GST_OBJECT_NAME (f), "rtspsrc") != 0)
    return;
  /* GstRTSPLowerTrans: 4 = TCP; select-rtp-protocol 0 = UDP | UDP multicast | TCP. */
  g_object_set (source, "protocols", opts->rtp_protocols == 4 ? 4u : 7u,
      "latency", (guint) opts->latency_ms, NULL);
}

gchar *
ds_slot_error_text (GstMessage *msg)
{
  GError *err = NULL;
  gchar *debug = NULL, *text;
  const gchar *tail;
  gsize len;

  if (msg == NULL || GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ERROR)
    return NULL;
  gst_message_parse_error (msg, &err, &debug);
  len = strlen (err->message);
  if (len > 0 && err->message[len - 1] == '.')
    len--;
  tail = debug != NULL ? strrchr (debug, '\n') : NULL;
  tail = tail != NULL ? tail + 1 : debug;
  if (tail == NULL || *tail == '\0' || strstr (tail, "(): ") != NULL)
    text = g_strndup (err->message, len); /* nothing to add, or only a location */
  else
    text = g_strdup_printf ("%.*s: %s", (int) len, err->message, tail);
  g_free (debug);
  g_error_free (err);
  return text;
}

gint
ds_slot_error_refusal (GstMessage *msg)
{
  static const gint codes[] = { 401, 403, 404 };
  GError *err = NULL;
  gchar *debug = NULL;
  gint status = 0;

  if (msg == NULL || GST_MESSAGE_TYPE (msg) != GST_MESSAGE_ERROR)
    return 0;
  gst_message_parse_error (msg, &err, &debug);
  if (err->domain == GST_RESOURCE_ERROR) {
    /* rtspsrc and souphttpsrc put the status in the debug text: "Not Found (404)". */
    for (guint i = 0; debug != NULL && status == 0 && i < G_N_ELEMENTS (codes); i++) {
      gchar *needle = g_strdup_printf ("(%d)", codes[i]);
      if (strstr (debug, needle) != NULL)
        status = codes[i];
      g_free (needle);
    }
    if (status == 0 && err->code == GST_RESOURCE_ERROR_NOT_AUTHORIZED)
      status = 401;
  }
  g_free (debug);
  g_error_free (err);
  return status;
}
