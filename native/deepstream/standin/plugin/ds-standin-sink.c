/* dsstandinsink: the end of the stand-in app's pipeline, keeping each batch (and so the
 * decoder surfaces in it) for hold-ms ([standin] hold-ms) before letting go, as a slow
 * encoder or display would. With wedge-after-frames=N ([standin] wedge-after-frames) it
 * stops letting go once N frames have reached it: from that batch on it keeps every
 * batch until it stops, as a downstream element that never releases its buffers does;
 * the decoders then wait for surfaces and the pipeline stops while the main loop goes
 * on. The real deepstream-app ends in its own fakesink. Test code, see ../README.md. */
#include "ds-standin-elements.h"
#include "ds-standin-options.h"

#include <gst/base/gstbasesink.h>

typedef struct {
  GstBaseSink parent;
  GMutex lock;
  GCond cond;
  GQueue held;          /* Held* */
  GThread *thread;
  gboolean running;
  guint hold_ms;
  guint wedge_after_frames; /* 0 = never */
  guint64 frames;           /* reached the sink (streaming thread) */
  GQueue wedged;            /* GstBuffer*, kept until the sink stops */
} DsStandinSink;

typedef struct {
  GstBaseSinkClass parent_class;
} DsStandinSinkClass;

typedef struct {
  GstBuffer *buf;
  gint64 release_us;
} Held;

G_DEFINE_TYPE (DsStandinSink, ds_standin_sink, GST_TYPE_BASE_SINK)

enum { PROP_0, PROP_HOLD_MS, PROP_WEDGE_AFTER_FRAMES };

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static void
held_free (gpointer data)
{
  Held *h = data;

  gst_buffer_unref (h->buf);
  g_free (h);
}

static gpointer
release_loop (gpointer data)
{
  DsStandinSink *self = data;

  g_mutex_lock (&self->lock);
  while (self->running) {
    Held *h = g_queue_peek_head (&self->held);
    if (h == NULL) {
      g_cond_wait (&self->cond, &self->lock);
    } else if (g_get_monotonic_time () < h->release_us) {
      g_cond_wait_until (&self->cond, &self->lock, h->release_us);
    } else {
      g_queue_pop_head (&self->held);
      g_mutex_unlock (&self->lock);
      held_free (h);
      g_mutex_lock (&self->lock);
    }
  }
  g_mutex_unlock (&self->lock);
  return NULL;
}

static void
release_all (DsStandinSink *self)
{
  GQueue q = G_QUEUE_INIT;

  g_mutex_lock (&self->lock);
  q = self->held;
  g_queue_init (&self->held);
  g_mutex_unlock (&self->lock);
  g_queue_clear_full (&q, held_free);
}

/* TRUE once wedge-after-frames frames have come: buf is then kept for good. */
static gboolean
wedge (DsStandinSink *self, GstBuffer *buf)
{
  NvDsBatchMeta *batch;

  if (self->wedge_after_frames == 0)
    return FALSE;
  if (self->frames < self->wedge_after_frames) {
    batch = gst_buffer_get_nvds_batch_meta (buf);
    self->frames += batch != NULL ? batch->num_frames_in_batch : 1;
    if (self->frames < self->wedge_after_frames)
      return FALSE;
    g_message ("standin sink: wedged after %" G_GUINT64_FORMAT " frames", self->frames);
  }
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->wedged, gst_buffer_ref (buf));
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static GstFlowReturn
sink_render (GstBaseSink *bsink, GstBuffer *buf)
{
  DsStandinSink *self = (DsStandinSink *) bsink;
  Held *h;

  if (wedge (self, buf) || self->hold_ms == 0)
    return GST_FLOW_OK;
  h = g_new (Held, 1);
  h->buf = gst_buffer_ref (buf);
  h->release_us = g_get_monotonic_time () + (gint64) self->hold_ms * 1000;
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->held, h);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  return GST_FLOW_OK;
}

static gboolean
sink_start (GstBaseSink *bsink)
{
  DsStandinSink *self = (DsStandinSink *) bsink;

  self->running = TRUE;
  self->thread = g_thread_new ("standin-sink", release_loop, self);
  return TRUE;
}

static gboolean
sink_stop (GstBaseSink *bsink)
{
  DsStandinSink *self = (DsStandinSink *) bsink;

  g_mutex_lock (&self->lock);
  self->running = FALSE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  g_thread_join (self->thread);
  self->thread = NULL;
  release_all (self);
  g_mutex_lock (&self->lock);
  g_queue_clear_full (&self->wedged, (GDestroyNotify) gst_buffer_unref);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static gboolean
sink_event (GstBaseSink *bsink, GstEvent *event)
{
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)
    release_all ((DsStandinSink *) bsink);
  return GST_BASE_SINK_CLASS (ds_standin_sink_parent_class)->event (bsink, event);
}

static void
sink_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  if (id == PROP_HOLD_MS)
    ((DsStandinSink *) object)->hold_ms = g_value_get_uint (value);
  else if (id == PROP_WEDGE_AFTER_FRAMES)
    ((DsStandinSink *) object)->wedge_after_frames = g_value_get_uint (value);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
sink_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  if (id == PROP_HOLD_MS)
    g_value_set_uint (value, ((DsStandinSink *) object)->hold_ms);
  else if (id == PROP_WEDGE_AFTER_FRAMES)
    g_value_set_uint (value, ((DsStandinSink *) object)->wedge_after_frames);
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
sink_finalize (GObject *object)
{
  DsStandinSink *self = (DsStandinSink *) object;

  g_queue_clear_full (&self->held, held_free);
  g_queue_clear_full (&self->wedged, (GDestroyNotify) gst_buffer_unref);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (ds_standin_sink_parent_class)->finalize (object);
}

static void
ds_standin_sink_class_init (DsStandinSinkClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GstElementClass *ec = GST_ELEMENT_CLASS (klass);
  GstBaseSinkClass *bc = GST_BASE_SINK_CLASS (klass);

  oc->set_property = sink_set_property;
  oc->get_property = sink_get_property;
  oc->finalize = sink_finalize;
  g_object_class_install_property (oc, PROP_HOLD_MS, g_param_spec_uint ("hold-ms",
          "Hold", "ms each batch is kept after rendering", 0, 60000,
          ds_standin_options ()->hold_ms,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (oc, PROP_WEDGE_AFTER_FRAMES, g_param_spec_uint (
          "wedge-after-frames", "Wedge", "keep every batch for good once this many frames "
          "came (0 = never)", 0, G_MAXUINT, ds_standin_options ()->wedge_after_frames,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  bc->render = sink_render;
  bc->start = sink_start;
  bc->stop = sink_stop;
  bc->event = sink_event;
  gst_element_class_add_static_pad_template (ec, &sink_template);
  gst_element_class_set_static_metadata (ec, "Sink (DeepStream stand-in)", "Sink",
      "Keeps batches for a while (test code)", "ds-analysis");
}

static void
ds_standin_sink_init (DsStandinSink *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->held);
  g_queue_init (&self->wedged);
  self->hold_ms = ds_standin_options ()->hold_ms;
  self->wedge_after_frames = ds_standin_options ()->wedge_after_frames;
}
