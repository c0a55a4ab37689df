/* dsstandinsurfaces: the decoder's output pool, as seen from the rest of the pipeline
 * (inside the stand-in nvv4l2decoder, ds-standin-decoder.c).
 *
 * A hardware decoder hands out a few surfaces and gets each back only when every holder
 * (the legacy muxer forwards them without copying, and keeps them until its batch is
 * released downstream) lets go. This element wraps each buffer it passes in such a
 * surface. With `max-surfaces` in use it waits for one to come back. When it stops
 * (PAUSED → READY) with surfaces still out, it either waits for them (`poison=false`, up
 * to `block-timeout-ms`, on whatever thread changed the state) or takes them back at once
 * and marks them bad (`poison=true`): a later read of such a frame by the muxer or the
 * tracker is counted in ds_standin_stats.poisoned_reads.
 *
 * A decoder session costs `decoder-create-ms`, paid once per element (one per file:
 * uridecodebin makes a new decoder for each) when the first caps arrive, on the streaming
 * thread, where NVDEC's session set-up happens; it cannot be interrupted.
 * Test code, see ../README.md. */
#include "ds-standin-elements.h"
#include "ds-standin-options.h"

GST_DEBUG_CATEGORY_STATIC (surfaces_debug);
#define GST_CAT_DEFAULT surfaces_debug

typedef struct _DsStandinSurfaces DsStandinSurfaces;
typedef struct _DsStandinSurfacesClass DsStandinSurfacesClass;

typedef struct {
  gint refcount;
  gint poisoned;
  DsStandinSurfaces *owner;
} Surface;

typedef struct {
  GstMeta meta;
  Surface *surface;
} SurfaceMeta;

struct _DsStandinSurfaces {
  GstElement parent;
  GstPad *sinkpad, *srcpad;
  GMutex lock;
  GCond cond;
  GPtrArray *out;          /* Surface*, handed out and not back */
  gboolean flushing;
  guint max_surfaces;
  gboolean poison;
  guint block_timeout_ms;
  guint create_ms;
  gboolean created;        /* the session was set up (streaming thread) */
};

struct _DsStandinSurfacesClass {
  GstElementClass parent_class;
};

G_DEFINE_TYPE (DsStandinSurfaces, ds_standin_surfaces, GST_TYPE_ELEMENT)

enum { PROP_0, PROP_MAX_SURFACES, PROP_POISON, PROP_BLOCK_TIMEOUT_MS, PROP_CREATE_MS };

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static void
surface_unref (Surface *s)
{
  if (g_atomic_int_dec_and_test (&s->refcount))
    g_free (s);
}

/* ---------- the surface meta ---------- */

static GType
surface_meta_api_get_type (void)
{
  static GType type;
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType t = gst_meta_api_type_register ("DsStandinSurfaceMetaAPI", tags);
    g_once_init_leave (&type, t);
  }
  return type;
}

static gboolean
surface_meta_init (GstMeta *meta, gpointer params, GstBuffer *buffer)
{
  (void) params;
  (void) buffer;
  ((SurfaceMeta *) meta)->surface = NULL;
  return TRUE;
}

/* The buffer that held the surface is gone: the surface is back with its decoder. */
static void
surface_meta_free (GstMeta *meta, GstBuffer *buffer)
{
  Surface *s = ((SurfaceMeta *) meta)->surface;
  DsStandinSurfaces *self;

  (void) buffer;
  if (s == NULL)
    return;
  self = s->owner;
  g_mutex_lock (&self->lock);
  /* absent when it was taken back poisoned: the list's reference is gone already */
  if (g_ptr_array_remove_fast (self->out, s))
    surface_unref (s);
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  gst_object_unref (self);
  surface_unref (s);
}

static const GstMetaInfo *
surface_meta_get_info (void)
{
  static const GstMetaInfo *info;

  if (g_once_init_enter (&info)) {
    const GstMetaInfo *i = gst_meta_register (surface_meta_api_get_type (),
        "DsStandinSurfaceMeta", sizeof (SurfaceMeta), surface_meta_init,
        surface_meta_free, NULL);
    g_once_init_leave (&info, i);
  }
  return info;
}

gboolean
ds_standin_surface_is_poisoned (GstBuffer *buffer)
{
  SurfaceMeta *m = (SurfaceMeta *) gst_buffer_get_meta (buffer, surface_meta_api_get_type ());

  return m != NULL && m->surface != NULL && g_atomic_int_get (&m->surface->poisoned);
}

/* ---------- element ---------- */

static GstFlowReturn
surfaces_chain (GstPad *pad, GstObject *parent, GstBuffer *in)
{
  DsStandinSurfaces *self = (DsStandinSurfaces *) parent;
  GstBuffer *outbuf;
  SurfaceMeta *meta;
  Surface *s;

  (void) pad;
  g_mutex_lock (&self->lock);
  while (!self->flushing && self->max_surfaces > 0 && self->out->len >= self->max_surfaces)
    g_cond_wait (&self->cond, &self->lock);
  if (self->flushing) {
    g_mutex_unlock (&self->lock);
    gst_buffer_unref (in);
    return GST_FLOW_FLUSHING;
  }
  s = g_new0 (Surface, 1);
  s->refcount = 2; /* the list of surfaces out, and the meta */
  s->owner = gst_object_ref (self);
  g_ptr_array_add (self->out, s);
  g_mutex_unlock (&self->lock);

  outbuf = gst_buffer_copy (in); /* same memory, our own buffer to hang the surface on */
  gst_buffer_unref (in);
  meta = (SurfaceMeta *) gst_buffer_add_meta (outbuf, surface_meta_get_info (), NULL);
  meta->surface = s;
  return gst_pad_push (self->srcpad, outbuf);
}

static void
set_flushing (DsStandinSurfaces *self, gboolean flushing)
{
  g_mutex_lock (&self->lock);
  self->flushing = flushing;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static gboolean
surfaces_sink_event (GstPad *pad, GstObject *parent, GstEvent *event)
{
  DsStandinSurfaces *self = (DsStandinSurfaces *) parent;

  if (GST_EVENT_TYPE (event) == GST_EVENT_CAPS && !self->created) {
    self->created = TRUE;
    g_atomic_int_inc (&ds_standin_stats.decoder_starts);
    if (self->create_ms > 0)
      g_usleep ((gulong) self->create_ms * 1000);
  }
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_START)
    set_flushing (self, TRUE);
  else if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP)
    set_flushing (self, FALSE);
  return gst_pad_event_default (pad, parent, event);
}

/* The decoder stops with surfaces still out: wait for them, or take them back. */
static void
reclaim_surfaces (DsStandinSurfaces *self)
{
  gint64 start = g_get_monotonic_time (), waited;
  gint64 deadline = start + (gint64) self->block_timeout_ms * 1000;

  g_mutex_lock (&self->lock);
  self->flushing = TRUE;
  g_cond_broadcast (&self->cond);
  if (!self->poison) {
    while (self->out->len > 0 && g_cond_wait_until (&self->cond, &self->lock, deadline))
      ;
    waited = (g_get_monotonic_time () - start) * 1000;
    ds_standin_stats_note_wait (waited);
    if (self->out->len > 0)
      GST_WARNING_OBJECT (self, "%u surfaces still out after %u ms", self->out->len,
          self->block_timeout_ms);
  }
  for (guint i = 0; i < self->out->len; i++) {
    Surface *s = g_ptr_array_index (self->out, i);
    g_atomic_int_set (&s->poisoned, 1);
    g_atomic_int_inc (&ds_standin_stats.surfaces_poisoned);
    surface_unref (s);
  }
  g_ptr_array_set_size (self->out, 0);
  g_mutex_unlock (&self->lock);
}

static GstStateChangeReturn
surfaces_change_state (GstElement *element, GstStateChange transition)
{
  DsStandinSurfaces *self = (DsStandinSurfaces *) element;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED)
    set_flushing (self, FALSE);
  else if (transition == GST_STATE_CHANGE_PAUSED_TO_READY)
    reclaim_surfaces (self);
  return GST_ELEMENT_CLASS (ds_standin_surfaces_parent_class)->change_state (element,
      transition);
}

static void
surfaces_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  DsStandinSurfaces *self = (DsStandinSurfaces *) object;

  switch (id) {
    case PROP_MAX_SURFACES:
      self->max_surfaces = g_value_get_uint (value);
      break;
    case PROP_POISON:
      self->poison = g_value_get_boolean (value);
      break;
    case PROP_BLOCK_TIMEOUT_MS:
      self->block_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_CREATE_MS:
      self->create_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
  }
}

static void
surfaces_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  DsStandinSurfaces *self = (DsStandinSurfaces *) object;

  switch (id) {
    case PROP_MAX_SURFACES:
      g_value_set_uint (value, self->max_surfaces);
      break;
    case PROP_POISON:
      g_value_set_boolean (value, self->poison);
      break;
    case PROP_BLOCK_TIMEOUT_MS:
      g_value_set_uint (value, self->block_timeout_ms);
      break;
    case PROP_CREATE_MS:
      g_value_set_uint (value, self->create_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
  }
}

static void
surfaces_finalize (GObject *object)
{
  DsStandinSurfaces *self = (DsStandinSurfaces *) object;

  g_ptr_array_unref (self->out);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  G_OBJECT_CLASS (ds_standin_surfaces_parent_class)->finalize (object);
}

static void
ds_standin_surfaces_class_init (DsStandinSurfacesClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GstElementClass *ec = GST_ELEMENT_CLASS (klass);
  const DsStandinOptions *o = ds_standin_options ();

  GST_DEBUG_CATEGORY_INIT (surfaces_debug, "dsstandinsurfaces", 0, "decoder surfaces stand-in");
  oc->set_property = surfaces_set_property;
  oc->get_property = surfaces_get_property;
  oc->finalize = surfaces_finalize;
  g_object_class_install_property (oc, PROP_MAX_SURFACES,
      g_param_spec_uint ("max-surfaces", "Max surfaces", "Surfaces out at once (0 = no limit)",
          0, G_MAXUINT, o->max_surfaces, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (oc, PROP_POISON,
      g_param_spec_boolean ("poison", "Poison", "On stop, take surfaces back at once",
          o->poison, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (oc, PROP_BLOCK_TIMEOUT_MS,
      g_param_spec_uint ("block-timeout-ms", "Block timeout", "Longest wait on stop",
          0, G_MAXUINT, o->block_timeout_ms, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_property (oc, PROP_CREATE_MS,
      g_param_spec_uint ("decoder-create-ms", "Decoder create ms",
          "Cost of setting up the decoder session, at its first caps",
          0, G_MAXUINT, o->decoder_create_ms, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  ec->change_state = surfaces_change_state;
  gst_element_class_add_static_pad_template (ec, &sink_template);
  gst_element_class_add_static_pad_template (ec, &src_template);
  gst_element_class_set_static_metadata (ec, "Decoder surfaces (DeepStream stand-in)",
      "Filter", "Models a hardware decoder's output pool (test code)", "ds-analysis");
}

static void
ds_standin_surfaces_init (DsStandinSurfaces *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->out = g_ptr_array_new ();
  self->flushing = TRUE;
  self->max_surfaces = ds_standin_options ()->max_surfaces;
  self->poison = ds_standin_options ()->poison;
  self->block_timeout_ms = ds_standin_options ()->block_timeout_ms;
  self->create_ms = ds_standin_options ()->decoder_create_ms;
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad, surfaces_chain);
  gst_pad_set_event_function (self->sinkpad, surfaces_sink_event);
  GST_PAD_SET_PROXY_CAPS (self->sinkpad);
  GST_PAD_SET_PROXY_ALLOCATION (self->sinkpad);
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);
  self->srcpad = gst_pad_new_from_static_template (&src_template, "src");
  GST_PAD_SET_PROXY_CAPS (self->srcpad);
  gst_element_add_pad (GST_ELEMENT (self), self->srcpad);
}
