/* ds-slot-core: see ds-slot-core.h. */
#include "ds-slot-core.h"

G_DEFINE_QUARK (ds-slot-error-quark, ds_slot_error)

gchar *
ds_slot_stall_text (gboolean no_frame_yet, gint64 ms)
{
  return g_strdup_printf (no_frame_yet ? "no video frame within %" G_GINT64_FORMAT " ms" :
      "stalled: no video frame for %" G_GINT64_FORMAT " ms", ms);
}

typedef struct {
  DsSlotCall call;
  DsSlotCallFunc func;
  gchar *text;  /* call.text points here */
} QueuedCall;

static gboolean
run_call (gpointer data)
{
  QueuedCall *q = data;

  q->func (&q->call);
  return G_SOURCE_REMOVE;
}

static void
free_call (gpointer data)
{
  QueuedCall *q = data;

  g_free (q->text);
  g_free (q);
}

void
ds_slot_call_queue (GMainContext *context, DsSlotCallFunc func, const DsSlotCall *call)
{
  QueuedCall *q = g_new (QueuedCall, 1);
  GSource *src = g_idle_source_new ();

  q->call = *call;
  q->text = g_strdup (call->text);
  q->call.text = q->text;
  q->func = func;
  g_source_set_priority (src, G_PRIORITY_DEFAULT);
  g_source_set_callback (src, run_call, q, free_call);
  g_source_attach (src, context);
  g_source_unref (src);
}

gboolean
ds_slot_call_is_current (const DsSlotCall *call, guint64 generation, guint state,
    guint states)
{
  return call->generation == generation && state < 32
      && (states & DS_SLOT_STATES (state)) != 0;
}
