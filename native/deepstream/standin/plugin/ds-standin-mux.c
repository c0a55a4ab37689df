/* nvstreammux (legacy): a model of the legacy nvstreammux, from its documented
 * behaviour, pessimistic where that says nothing.
 *
 * - Request pads sink_%u, one per source; each has a short queue (the muxer does not
 *   buffer much: a source waits while its pad is full).
 * - A batch takes up to batch-size frames: from each pad in the batch up to its share,
 *   batch-size ÷ pads in the batch (the documented legacy rule), or at most
 *   frames-per-source; it is pushed when every such pad has its share, or all it has
 *   before an EOS (or batch-size frames are there), else when batched-push-timeout has
 *   passed since a frame was first waiting. A pad is in the batch from when it is
 *   requested; EOS takes it out until it gets data again (an idle pad that never saw
 *   EOS holds every batch for the timeout).
 * - eos-needs-flush (the default): a pad that got EOS takes no data and no custom event
 *   until a FLUSH_STOP, whatever STREAM_START or CAPS come after it (NVIDIA's own code
 *   always flushes a pad before reusing it; what the closed muxer does otherwise is
 *   unknown); with 0 the next buffer opens the pad again.
 * - EOS on a pad becomes a per-source stream EOS event downstream, after that pad's
 *   frames; when every pad is at EOS an EOS follows unless drop-pipeline-eos.
 * - Serialized custom events (the stream reset) go downstream in order with the pad's
 *   frames, or ahead of the frames it has queued when reset-in-order=false.
 * - A per-pad flush drops that pad's queue (stream resets queued there included) and is
 *   not forwarded downstream, unless forward-flush=true (which then flushes every
 *   source's frames in flight).
 * - batch-copy-ms: the time spent on each batch (the legacy muxer copies the frames into
 *   the batch surface); meanwhile nothing queued moves, events included.
 * - Input buffers are not copied: the batch holds them until it is released downstream.
 *
 * The stand-in switches take their defaults from [standin] (ds-standin-options.h); every
 * other property deepstream-app 7.1 sets on the muxer is accepted and kept.
 * Test code, see ../README.md. */
#include "ds-standin-elements.h"
#include "ds-standin-options.h"
#include "ds-standin-props.h"

#include <stdlib.h>

GST_DEBUG_CATEGORY_STATIC (mux_debug);
#define GST_CAT_DEFAULT mux_debug

#define MAX_PADS 64
#define BATCH_MEMORY_BYTES 64

typedef struct _DsStandinMux DsStandinMux;
typedef struct _DsStandinMuxClass DsStandinMuxClass;

typedef struct {
  DsStandinMux *mux;
  GstPad *pad;
  guint index;
  GQueue items;       /* GstBuffer / GstEvent, in arrival order */
  guint n_buffers;
  gboolean eos;       /* out of the batch until it gets data again */
  gboolean closed;    /* eos-needs-flush: refuses data until FLUSH_STOP */
  gboolean flushing;
  gint frame_num;
} MuxPad;

struct _DsStandinMux {
  GstElement parent;
  GstPad *srcpad;
  GMutex lock;
  GCond cond;
  MuxPad *pads[MAX_PADS];
  GQueue urgent;      /* events that overtake queued frames */
  GMutex push_lock;   /* one thread pushes downstream at a time (the batcher, or a
                       * forwarded flush-stop in its sender's order) */
  GThread *thread;
  gboolean running;
  guint next_first;   /* round robin over the pads */
  gboolean sent_eos;
  /* properties */
  guint batch_size;
  gint batched_push_timeout; /* µs, -1 = wait forever */
  guint width, height;
  gboolean drop_pipeline_eos;
  guint max_queue;
  gboolean forward_flush;
  gboolean reset_in_order;
  gboolean eos_needs_flush;
  guint frames_per_source;
  guint batch_copy_ms;
  DsStandinProps accepted;
};

struct _DsStandinMuxClass {
  GstElementClass parent_class;
};

G_DEFINE_TYPE (DsStandinMux, ds_standin_mux, GST_TYPE_ELEMENT)

enum {
  PROP_0, PROP_BATCH_SIZE, PROP_BATCHED_PUSH_TIMEOUT, PROP_WIDTH, PROP_HEIGHT,
  PROP_DROP_PIPELINE_EOS, PROP_MAX_QUEUE, PROP_FORWARD_FLUSH, PROP_RESET_IN_ORDER,
  PROP_EOS_NEEDS_FLUSH, PROP_FRAMES_PER_SOURCE, PROP_BATCH_COPY_MS, PROP_ACCEPTED
};

/* What deepstream-app 7.1 may set besides the above (deepstream_streammux.c). */
static const DsStandinProp accepted_props[] = {
  { "gpu-id", G_TYPE_UINT }, { "nvbuf-memory-type", G_TYPE_UINT },
  { "live-source", G_TYPE_BOOLEAN }, { "compute-hw", G_TYPE_INT },
  { "buffer-pool-size", G_TYPE_UINT }, { "enable-padding", G_TYPE_BOOLEAN },
  { "async-process", G_TYPE_BOOLEAN }, { "attach-sys-ts", G_TYPE_BOOLEAN },
  { "config-file-path", G_TYPE_STRING }, { "frame-duration", G_TYPE_UINT64 },
  { "frame-num-reset-on-stream-reset", G_TYPE_BOOLEAN }, { "sync-inputs", G_TYPE_BOOLEAN },
  { "max-latency", G_TYPE_UINT64 }, { "frame-num-reset-on-eos", G_TYPE_BOOLEAN },
  { "extract-sei-type5-data", G_TYPE_BOOLEAN }, { "num-surfaces-per-frame", G_TYPE_UINT },
  { "interpolation-method", G_TYPE_INT },
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink_%u",
    GST_PAD_SINK, GST_PAD_REQUEST, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS ("video/x-raw(memory:NVMM)"));

/* Returns how many stream resets it dropped. */
static gint
pad_drop_queue (MuxPad *p)
{
  GstMiniObject *o;
  gint resets = 0;

  while ((o = g_queue_pop_head (&p->items)) != NULL) {
    if (GST_IS_EVENT (o) && (gint) GST_EVENT_TYPE (o) == (gint) GST_NVEVENT_STREAM_RESET)
      resets++;
    gst_mini_object_unref (o);
  }
  p->n_buffers = 0;
  return resets;
}

/* ---------- the batching rule ---------- */

static guint
pads_in_batch (DsStandinMux *self)
{
  guint n = 0;

  for (guint i = 0; i < MAX_PADS; i++)
    if (self->pads[i] != NULL && !self->pads[i]->eos)
      n++;
  return n;
}

/* Frames one pad may put in a batch. */
static guint
share (DsStandinMux *self, guint active)
{
  if (self->frames_per_source > 0)
    return MIN (self->frames_per_source, self->batch_size);
  return MAX (1u, self->batch_size / MAX (1u, active));
}

/* Frames waiting at the head of a pad's queue, before any event; *last: no more can
 * come before an EOS (the pad's share is then whatever it has). */
static guint
head_buffers (MuxPad *p, gboolean *last)
{
  guint n = 0;
  GList *l;

  for (l = p->items.head; l != NULL && GST_IS_BUFFER (l->data); l = l->next)
    n++;
  *last = l != NULL && GST_EVENT_TYPE (l->data) == GST_EVENT_EOS;
  return n;
}

/* ---------- the batching thread ---------- */

static void
push_event (DsStandinMux *self, GstEvent *event)
{
  g_mutex_lock (&self->push_lock);
  gst_pad_push_event (self->srcpad, event);
  g_mutex_unlock (&self->push_lock);
}

static void
push_unlocked (DsStandinMux *self, GstEvent *event)
{
  g_mutex_unlock (&self->lock);
  push_event (self, event);
  g_mutex_lock (&self->lock);
}

static void
push_segment (DsStandinMux *self)
{
  GstSegment segment;

  gst_segment_init (&segment, GST_FORMAT_TIME);
  push_event (self, gst_event_new_segment (&segment));
}

static gboolean
all_pads_eos (DsStandinMux *self)
{
  gboolean any = FALSE;

  for (guint i = 0; i < MAX_PADS; i++) {
    if (self->pads[i] == NULL)
      continue;
    if (!self->pads[i]->eos)
      return FALSE;
    any = TRUE;
  }
  return any;
}

/* An event that reached the head of a pad's queue: every frame before it is batched. */
static void
pad_event (DsStandinMux *self, MuxPad *p, GstEvent *event)
{
  if (GST_EVENT_TYPE (event) != GST_EVENT_EOS) {
    push_unlocked (self, event);
    return;
  }
  gst_event_unref (event);
  p->eos = TRUE;
  g_cond_broadcast (&self->cond);
  push_unlocked (self, gst_nvevent_new_stream_eos (p->index));
  if (!self->drop_pipeline_eos && !self->sent_eos && all_pads_eos (self)) {
    self->sent_eos = TRUE;
    push_unlocked (self, gst_event_new_eos ());
  }
}

static GstBuffer *
take_batch (DsStandinMux *self, guint quota)
{
  /* On a GPU the batch's memory is an NvBufSurface listing the frames; apps map it
   * (deepstream-app's primary-GIE probe does): a zeroed block stands in for it. */
  GstBuffer *out = gst_buffer_new_wrapped (g_malloc0 (BATCH_MEMORY_BYTES), BATCH_MEMORY_BYTES);
  NvDsBatchMeta *batch = ds_standin_batch_meta_add (out);
  guint n = 0;

  for (guint k = 0; k < MAX_PADS && n < self->batch_size; k++) {
    MuxPad *p = self->pads[(self->next_first + k) % MAX_PADS];
    for (guint taken = 0; p != NULL && taken < quota && n < self->batch_size
        && GST_IS_BUFFER (g_queue_peek_head (&p->items)); taken++) {
      GstBuffer *in = g_queue_pop_head (&p->items);
      NvDsFrameMeta *f;
      p->n_buffers--;
      /* Scaling into the batch reads the surface. */
      if (ds_standin_surface_is_poisoned (in))
        g_atomic_int_inc (&ds_standin_stats.poisoned_reads);
      f = ds_standin_frame_meta_new (batch);
      f->pad_index = f->source_id = p->index;
      f->frame_num = p->frame_num++;
      f->buf_pts = GST_BUFFER_PTS (in);
      ds_standin_frame_hold_input (batch, f, in);
      if (n == 0)
        GST_BUFFER_PTS (out) = GST_BUFFER_PTS (in);
      n++;
    }
  }
  self->next_first = (self->next_first + 1) % MAX_PADS;
  g_atomic_int_inc (&ds_standin_stats.batches);
  ds_standin_stats_add_frames (n);
  return out;
}

static GstCaps *
src_caps (DsStandinMux *self)
{
  GstCaps *caps = gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, "NV12",
      "width", G_TYPE_INT, (gint) MAX (1u, self->width),
      "height", G_TYPE_INT, (gint) MAX (1u, self->height),
      "framerate", GST_TYPE_FRACTION, 0, 1, NULL);

  gst_caps_set_features (caps, 0, gst_caps_features_new ("memory:NVMM", NULL));
  return caps;
}

static gpointer
collect_loop (gpointer data)
{
  DsStandinMux *self = data;
  gint64 waiting_since = -1;
  GstCaps *caps = src_caps (self);

  push_event (self, gst_event_new_stream_start ("ds-standin-mux"));
  push_event (self, gst_event_new_caps (caps));
  gst_caps_unref (caps);
  push_segment (self);

  g_mutex_lock (&self->lock);
  while (self->running) {
    GstEvent *ev;
    MuxPad *head_event = NULL;
    guint active, quota, total = 0, copy_ms;
    gboolean complete = TRUE;
    GstBuffer *batch;

    if ((ev = g_queue_pop_head (&self->urgent)) != NULL) {
      push_unlocked (self, ev);
      continue;
    }
    for (guint i = 0; i < MAX_PADS && head_event == NULL; i++) {
      MuxPad *p = self->pads[i];
      if (p != NULL && GST_IS_EVENT (g_queue_peek_head (&p->items)))
        head_event = p;
    }
    if (head_event != NULL) {
      pad_event (self, head_event, g_queue_pop_head (&head_event->items));
      continue;
    }

    active = pads_in_batch (self);
    quota = share (self, active);
    for (guint i = 0; i < MAX_PADS; i++) {
      MuxPad *p = self->pads[i];
      gboolean last;
      guint n;
      if (p == NULL)
        continue;
      n = head_buffers (p, &last);
      total += MIN (n, quota);
      if (!p->eos && !last && n < quota)
        complete = FALSE;
    }
    if (total == 0) {
      waiting_since = -1;
      g_cond_wait (&self->cond, &self->lock);
      continue;
    }
    if (!complete && total < self->batch_size) {
      gint64 now = g_get_monotonic_time ();
      if (waiting_since < 0)
        waiting_since = now;
      if (self->batched_push_timeout < 0) {
        g_cond_wait (&self->cond, &self->lock);
        continue;
      }
      if (now < waiting_since + self->batched_push_timeout) {
        g_cond_wait_until (&self->cond, &self->lock,
            waiting_since + self->batched_push_timeout);
        continue;
      }
      g_atomic_int_inc (&ds_standin_stats.timeout_pushes); /* waited out, pushed short */
    }
    waiting_since = -1;
    batch = take_batch (self, quota);
    copy_ms = self->batch_copy_ms;
    g_cond_broadcast (&self->cond); /* room in the pads' queues */
    g_mutex_unlock (&self->lock);
    if (copy_ms > 0) /* meanwhile nothing queued moves, events included */
      g_usleep ((gulong) copy_ms * 1000);
    g_mutex_lock (&self->push_lock);
    gst_pad_push (self->srcpad, batch); /* FLUSHING after a forwarded flush: dropped */
    g_mutex_unlock (&self->push_lock);
    g_mutex_lock (&self->lock);
  }
  g_mutex_unlock (&self->lock);
  return NULL;
}

/* ---------- sink pads (upstream streaming threads) ---------- */

static GstFlowReturn
mux_chain (GstPad *pad, GstObject *parent, GstBuffer *buf)
{
  DsStandinMux *self = (DsStandinMux *) parent;
  MuxPad *p = gst_pad_get_element_private (pad);

  g_mutex_lock (&self->lock);
  if (p->closed) {
    g_mutex_unlock (&self->lock);
    g_atomic_int_inc (&ds_standin_stats.dropped_at_eos);
    GST_LOG_OBJECT (pad, "at EOS, not flushed: buffer dropped");
    gst_buffer_unref (buf);
    return GST_FLOW_OK;
  }
  /* A pad's share of a batch must fit in its queue, or the batch never fills. */
  while (!p->flushing && self->running
      && p->n_buffers >= MAX (self->max_queue, share (self, pads_in_batch (self))))
    g_cond_wait (&self->cond, &self->lock);
  if (p->flushing || !self->running) {
    g_mutex_unlock (&self->lock);
    gst_buffer_unref (buf);
    return GST_FLOW_FLUSHING;
  }
  p->eos = FALSE;
  self->sent_eos = FALSE;
  g_queue_push_tail (&p->items, buf);
  p->n_buffers++;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  return GST_FLOW_OK;
}

static gboolean
mux_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  DsStandinMux *self = (DsStandinMux *) parent;
  MuxPad *p = gst_pad_get_element_private (pad);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_FLUSH_START:
      g_mutex_lock (&self->lock);
      p->flushing = TRUE;
      g_atomic_int_add (&ds_standin_stats.resets_flushed, pad_drop_queue (p));
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->lock);
      if (self->forward_flush) {
        g_atomic_int_inc (&ds_standin_stats.flushes_forwarded);
        return gst_pad_push_event (self->srcpad, event);
      }
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      g_mutex_lock (&self->lock);
      p->flushing = FALSE;
      p->eos = FALSE;
      p->closed = FALSE;
      g_atomic_int_add (&ds_standin_stats.resets_flushed, pad_drop_queue (p));
      g_cond_broadcast (&self->cond);
      g_mutex_unlock (&self->lock);
      if (self->forward_flush) {
        /* In the sender's order, after its flush-start (a flush-stop passed on later by
         * another thread could cancel a newer flush-start downstream). */
        push_event (self, event);
        push_segment (self); /* a flush ends the segment */
        return TRUE;
      }
      gst_event_unref (event);
      return TRUE;
    case GST_EVENT_STREAM_START:
    case GST_EVENT_CAPS:
    case GST_EVENT_SEGMENT:
    case GST_EVENT_TAG:
    case GST_EVENT_GAP:
    case GST_EVENT_STREAM_GROUP_DONE:
      gst_event_unref (event); /* the batch has its own; none of them opens a closed pad */
      return TRUE;
    default:
      break;
  }
  if (GST_EVENT_IS_SERIALIZED (event) && GST_EVENT_IS_DOWNSTREAM (event)) {
    g_mutex_lock (&self->lock);
    if (p->closed) {
      g_mutex_unlock (&self->lock);
      GST_INFO_OBJECT (pad, "at EOS, not flushed: %s refused", GST_EVENT_TYPE_NAME (event));
      gst_event_unref (event);
      return FALSE;
    }
    if (GST_EVENT_TYPE (event) == GST_EVENT_EOS && self->eos_needs_flush)
      p->closed = TRUE;
    if ((gint) GST_EVENT_TYPE (event) == (gint) GST_NVEVENT_STREAM_RESET
        && !self->reset_in_order)
      g_queue_push_tail (&self->urgent, event);
    else
      g_queue_push_tail (&p->items, event); /* EOS included */
    g_cond_broadcast (&self->cond);
    g_mutex_unlock (&self->lock);
    return TRUE;
  }
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
mux_sink_activate_mode (GstPad *pad, GstObject *parent, GstPadMode mode, gboolean active)
{
  DsStandinMux *self = (DsStandinMux *) parent;
  MuxPad *p = gst_pad_get_element_private (pad);

  (void) mode;
  g_mutex_lock (&self->lock);
  p->flushing = !active;
  if (!active)
    pad_drop_queue (p);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

static GstPad *
mux_request_new_pad (GstElement *element, GstPadTemplate *templ, const gchar *name,
    const GstCaps *caps)
{
  DsStandinMux *self = (DsStandinMux *) element;
  guint64 index;
  MuxPad *p;
  gchar *end = NULL;

  (void) caps;
  if (name == NULL || !g_str_has_prefix (name, "sink_"))
    return NULL;
  index = g_ascii_strtoull (name + 5, &end, 10);
  if (end == name + 5 || *end != '\0' || index >= MAX_PADS)
    return NULL;
  g_mutex_lock (&self->lock);
  if (self->pads[index] != NULL) {
    g_mutex_unlock (&self->lock);
    return NULL;
  }
  p = g_new0 (MuxPad, 1);
  p->mux = self;
  p->index = (guint) index;
  p->flushing = TRUE;
  g_queue_init (&p->items);
  p->pad = gst_pad_new_from_template (templ, name);
  gst_pad_set_element_private (p->pad, p);
  gst_pad_set_chain_function (p->pad, mux_chain);
  gst_pad_set_event_function (p->pad, mux_sink_event);
  gst_pad_set_activatemode_function (p->pad, mux_sink_activate_mode);
  self->pads[index] = p;
  g_mutex_unlock (&self->lock);
  if (GST_STATE (element) >= GST_STATE_PAUSED)
    gst_pad_set_active (p->pad, TRUE);
  gst_element_add_pad (element, p->pad);
  return p->pad;
}

static void
mux_release_pad (GstElement *element, GstPad *pad)
{
  DsStandinMux *self = (DsStandinMux *) element;
  MuxPad *p = gst_pad_get_element_private (pad);

  g_mutex_lock (&self->lock);
  self->pads[p->index] = NULL;
  pad_drop_queue (p);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  gst_element_remove_pad (element, pad);
  g_free (p);
}

static void
stop_thread (DsStandinMux *self)
{
  g_mutex_lock (&self->lock);
  self->running = FALSE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  if (self->thread != NULL) {
    g_thread_join (self->thread);
    self->thread = NULL;
  }
  g_mutex_lock (&self->lock);
  for (guint i = 0; i < MAX_PADS; i++)
    if (self->pads[i] != NULL)
      pad_drop_queue (self->pads[i]);
  g_queue_clear_full (&self->urgent, (GDestroyNotify) gst_mini_object_unref);
  g_mutex_unlock (&self->lock);
}

static GstStateChangeReturn
mux_change_state (GstElement *element, GstStateChange transition)
{
  DsStandinMux *self = (DsStandinMux *) element;
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    stop_thread (self);
  ret = GST_ELEMENT_CLASS (ds_standin_mux_parent_class)->change_state (element, transition);
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && ret != GST_STATE_CHANGE_FAILURE) {
    self->running = TRUE;
    self->sent_eos = FALSE;
    self->thread = g_thread_new ("standin-mux", collect_loop, self);
  }
  return ret;
}

static void
mux_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  DsStandinMux *self = (DsStandinMux *) object;

  g_mutex_lock (&self->lock);
  switch (id) {
    case PROP_BATCH_SIZE:
      self->batch_size = MAX (1u, g_value_get_uint (value));
      break;
    case PROP_BATCHED_PUSH_TIMEOUT:
      self->batched_push_timeout = g_value_get_int (value);
      break;
    case PROP_WIDTH:
      self->width = g_value_get_uint (value);
      break;
    case PROP_HEIGHT:
      self->height = g_value_get_uint (value);
      break;
    case PROP_DROP_PIPELINE_EOS:
      self->drop_pipeline_eos = g_value_get_boolean (value);
      break;
    case PROP_MAX_QUEUE:
      self->max_queue = MAX (1u, g_value_get_uint (value));
      break;
    case PROP_FORWARD_FLUSH:
      self->forward_flush = g_value_get_boolean (value);
      break;
    case PROP_RESET_IN_ORDER:
      self->reset_in_order = g_value_get_boolean (value);
      break;
    case PROP_EOS_NEEDS_FLUSH:
      self->eos_needs_flush = g_value_get_boolean (value);
      break;
    case PROP_FRAMES_PER_SOURCE:
      self->frames_per_source = g_value_get_uint (value);
      break;
    case PROP_BATCH_COPY_MS:
      self->batch_copy_ms = g_value_get_uint (value);
      break;
    default:
      if (!ds_standin_props_set (&self->accepted, id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
  }
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
mux_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  DsStandinMux *self = (DsStandinMux *) object;

  g_mutex_lock (&self->lock);
  switch (id) {
    case PROP_BATCH_SIZE:
      g_value_set_uint (value, self->batch_size);
      break;
    case PROP_BATCHED_PUSH_TIMEOUT:
      g_value_set_int (value, self->batched_push_timeout);
      break;
    case PROP_WIDTH:
      g_value_set_uint (value, self->width);
      break;
    case PROP_HEIGHT:
      g_value_set_uint (value, self->height);
      break;
    case PROP_DROP_PIPELINE_EOS:
      g_value_set_boolean (value, self->drop_pipeline_eos);
      break;
    case PROP_MAX_QUEUE:
      g_value_set_uint (value, self->max_queue);
      break;
    case PROP_FORWARD_FLUSH:
      g_value_set_boolean (value, self->forward_flush);
      break;
    case PROP_RESET_IN_ORDER:
      g_value_set_boolean (value, self->reset_in_order);
      break;
    case PROP_EOS_NEEDS_FLUSH:
      g_value_set_boolean (value, self->eos_needs_flush);
      break;
    case PROP_FRAMES_PER_SOURCE:
      g_value_set_uint (value, self->frames_per_source);
      break;
    case PROP_BATCH_COPY_MS:
      g_value_set_uint (value, self->batch_copy_ms);
      break;
    default:
      if (!ds_standin_props_get (&self->accepted, id, value))
        G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
  }
  g_mutex_unlock (&self->lock);
}

static void
mux_finalize (GObject *object)
{
  DsStandinMux *self = (DsStandinMux *) object;

  for (guint i = 0; i < MAX_PADS; i++) {
    if (self->pads[i] != NULL) {
      pad_drop_queue (self->pads[i]);
      g_free (self->pads[i]);
    }
  }
  g_queue_clear_full (&self->urgent, (GDestroyNotify) gst_mini_object_unref);
  ds_standin_props_clear (&self->accepted);
  g_mutex_clear (&self->lock);
  g_mutex_clear (&self->push_lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (ds_standin_mux_parent_class)->finalize (object);
}

static void
ds_standin_mux_class_init (DsStandinMuxClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GstElementClass *ec = GST_ELEMENT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const DsStandinOptions *o = ds_standin_options ();

  GST_DEBUG_CATEGORY_INIT (mux_debug, "dsstandinmux", 0, "legacy nvstreammux stand-in");
  oc->set_property = mux_set_property;
  oc->get_property = mux_get_property;
  oc->finalize = mux_finalize;
  g_object_class_install_property (oc, PROP_BATCH_SIZE, g_param_spec_uint ("batch-size",
          "Batch size", "Frames per batch at most", 1, 1024, 1, rw));
  g_object_class_install_property (oc, PROP_BATCHED_PUSH_TIMEOUT,
      g_param_spec_int ("batched-push-timeout", "Batched push timeout",
          "µs to wait for a full batch (-1 = forever)", -1, G_MAXINT, 40000, rw));
  g_object_class_install_property (oc, PROP_WIDTH, g_param_spec_uint ("width", "Width",
          "Width of the batched frames (caps only: nothing is scaled)", 0, G_MAXINT, 0, rw));
  g_object_class_install_property (oc, PROP_HEIGHT, g_param_spec_uint ("height", "Height",
          "Height of the batched frames (caps only: nothing is scaled)", 0, G_MAXINT, 0, rw));
  g_object_class_install_property (oc, PROP_DROP_PIPELINE_EOS,
      g_param_spec_boolean ("drop-pipeline-eos", "Drop pipeline EOS",
          "No EOS downstream when every pad is at EOS", FALSE, rw));
  g_object_class_install_property (oc, PROP_MAX_QUEUE, g_param_spec_uint ("max-queue",
          "Max queue", "Frames a pad may have waiting, at least its share of a batch",
          1, 1024, o->max_queue, rw));
  g_object_class_install_property (oc, PROP_FORWARD_FLUSH,
      g_param_spec_boolean ("forward-flush", "Forward flush",
          "Pass a pad's flush downstream (pessimistic variant)", o->forward_flush, rw));
  g_object_class_install_property (oc, PROP_RESET_IN_ORDER,
      g_param_spec_boolean ("reset-in-order", "Reset in order",
          "Stream resets stay behind the pad's queued frames", o->reset_in_order, rw));
  g_object_class_install_property (oc, PROP_EOS_NEEDS_FLUSH,
      g_param_spec_boolean ("eos-needs-flush", "EOS needs flush",
          "A pad that got EOS takes data again only after FLUSH_STOP", o->eos_needs_flush,
          rw));
  g_object_class_install_property (oc, PROP_FRAMES_PER_SOURCE,
      g_param_spec_uint ("frames-per-source", "Frames per source",
          "Frames of one pad in a batch at most (0: batch-size / pads in the batch)",
          0, 1024, o->frames_per_source, rw));
  g_object_class_install_property (oc, PROP_BATCH_COPY_MS,
      g_param_spec_uint ("batch-copy-ms", "Batch copy ms",
          "Time spent on each batch (the copy into the batch surface), queues waiting",
          0, 10000, o->batch_copy_ms, rw));
  ds_standin_props_install (oc, PROP_ACCEPTED, accepted_props,
      G_N_ELEMENTS (accepted_props));
  ec->change_state = mux_change_state;
  ec->request_new_pad = mux_request_new_pad;
  ec->release_pad = mux_release_pad;
  gst_element_class_add_static_pad_template (ec, &sink_template);
  gst_element_class_add_static_pad_template (ec, &src_template);
  gst_element_class_set_static_metadata (ec, "Legacy nvstreammux (DeepStream stand-in)",
      "Generic", "Models the legacy nvstreammux's batching (test code)", "ds-analysis");
}

static void
ds_standin_mux_init (DsStandinMux *self)
{
  const DsStandinOptions *o = ds_standin_options ();

  g_mutex_init (&self->lock);
  g_mutex_init (&self->push_lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->urgent);
  self->batch_size = 1;
  self->batched_push_timeout = 40000;
  self->max_queue = o->max_queue;
  self->forward_flush = o->forward_flush;
  self->reset_in_order = o->reset_in_order;
  self->eos_needs_flush = o->eos_needs_flush;
  self->frames_per_source = o->frames_per_source;
  self->batch_copy_ms = o->batch_copy_ms;
  ds_standin_props_init (&self->accepted, PROP_ACCEPTED, accepted_props,
      G_N_ELEMENTS (accepted_props));
  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  gst_pad_use_fixed_caps (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
