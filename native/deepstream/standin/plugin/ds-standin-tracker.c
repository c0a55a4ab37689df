/* nvtracker: a model of nvtracker's ID handling. One synthetic object per frame per
 * source, whose ID stays the same until that source's state is reset and is never
 * reused. Like nvtracker, a stream reset drops a source's tracks only when
 * tracking-id-reset-mode has bit 0 set, a per-source stream EOS only with bit 1.
 * Reading a frame whose decoder surface went bad is counted (ds_standin_stats). Every
 * other property deepstream-app 7.1 sets on the tracker is accepted and kept.
 * Test code, see ../README.md. */
#include "ds-standin-elements.h"
#include "ds-standin-props.h"

#include <gst/base/gstbasetransform.h>
#include <string.h>

GST_DEBUG_CATEGORY_STATIC (tracker_debug);
#define GST_CAT_DEFAULT tracker_debug

#define MAX_SOURCES 64

typedef struct {
  GstBaseTransform parent;
  GMutex lock;
  guint reset_mode;
  guint64 next_id;
  guint64 track[MAX_SOURCES]; /* 0 = none yet */
  DsStandinProps accepted;
} DsStandinTracker;

typedef struct {
  GstBaseTransformClass parent_class;
} DsStandinTrackerClass;

G_DEFINE_TYPE (DsStandinTracker, ds_standin_tracker, GST_TYPE_BASE_TRANSFORM)

enum { PROP_0, PROP_RESET_MODE, PROP_ACCEPTED };

/* What deepstream-app 7.1 sets besides tracking-id-reset-mode (deepstream_tracker_bin.c). */
static const DsStandinProp accepted_props[] = {
  { "tracker-width", G_TYPE_UINT }, { "tracker-height", G_TYPE_UINT },
  { "gpu-id", G_TYPE_UINT }, { "ll-config-file", G_TYPE_STRING },
  { "ll-lib-file", G_TYPE_STRING }, { "display-tracking-id", G_TYPE_BOOLEAN },
  { "tracking-surface-type", G_TYPE_UINT }, { "input-tensor-meta", G_TYPE_BOOLEAN },
  { "tensor-meta-gie-id", G_TYPE_UINT }, { "compute-hw", G_TYPE_UINT },
  { "user-meta-pool-size", G_TYPE_UINT }, { "sub-batches", G_TYPE_STRING },
  { "sub-batch-err-recovery-trial-cnt", G_TYPE_INT },
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GstFlowReturn
tracker_transform_ip (GstBaseTransform *trans, GstBuffer *buf)
{
  DsStandinTracker *self = (DsStandinTracker *) trans;
  NvDsBatchMeta *batch = gst_buffer_get_nvds_batch_meta (buf);

  if (batch == NULL)
    return GST_FLOW_OK;
  g_mutex_lock (&self->lock);
  for (GList *l = batch->frame_meta_list; l != NULL; l = l->next) {
    NvDsFrameMeta *f = l->data;
    GstBuffer *input = ds_standin_frame_input (batch, f);
    NvDsObjectMeta *o;
    guint src = f->source_id % MAX_SOURCES;

    if (input != NULL && ds_standin_surface_is_poisoned (input))
      g_atomic_int_inc (&ds_standin_stats.poisoned_reads);
    if (self->track[src] == 0)
      self->track[src] = ++self->next_id;
    o = ds_standin_object_meta_new ();
    o->object_id = self->track[src];
    o->class_id = (gint) src;
    o->confidence = 0.5f;
    g_strlcpy (o->obj_label, "standin object", sizeof (o->obj_label));
    o->rect_params.left = (gfloat) (f->frame_num % 100);
    o->rect_params.top = 10.0f;
    o->rect_params.width = o->rect_params.height = 20.0f;
    o->tracker_bbox_info.org_bbox_coords.left = o->rect_params.left + 1.0f;
    o->tracker_bbox_info.org_bbox_coords.top = 11.0f;
    o->tracker_bbox_info.org_bbox_coords.width = 18.0f;
    o->tracker_bbox_info.org_bbox_coords.height = 18.0f;
    f->obj_meta_list = g_list_append (f->obj_meta_list, o);
  }
  g_mutex_unlock (&self->lock);
  return GST_FLOW_OK;
}

static gboolean
tracker_sink_event (GstBaseTransform *trans, GstEvent *event)
{
  DsStandinTracker *self = (DsStandinTracker *) trans;
  gint type = (gint) GST_EVENT_TYPE (event);
  guint src = G_MAXUINT, bit = 0;

  if (type == (gint) GST_NVEVENT_STREAM_RESET) {
    gst_nvevent_parse_stream_reset (event, &src);
    bit = 1;
  } else if (type == (gint) GST_NVEVENT_STREAM_EOS) {
    gst_nvevent_parse_stream_eos (event, &src);
    bit = 2;
  }
  if (bit != 0 && src < MAX_SOURCES) {
    g_mutex_lock (&self->lock);
    if (self->reset_mode & bit)
      self->track[src] = 0;
    g_mutex_unlock (&self->lock);
  }
  return GST_BASE_TRANSFORM_CLASS (ds_standin_tracker_parent_class)->sink_event (trans, event);
}

static void
tracker_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  DsStandinTracker *self = (DsStandinTracker *) object;

  if (id == PROP_RESET_MODE) {
    g_mutex_lock (&self->lock);
    self->reset_mode = g_value_get_uint (value);
    g_mutex_unlock (&self->lock);
  } else if (!ds_standin_props_set (&self->accepted, id, value)) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
  }
}

static void
tracker_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  DsStandinTracker *self = (DsStandinTracker *) object;

  if (id == PROP_RESET_MODE)
    g_value_set_uint (value, self->reset_mode);
  else if (!ds_standin_props_get (&self->accepted, id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
tracker_finalize (GObject *object)
{
  ds_standin_props_clear (&((DsStandinTracker *) object)->accepted);
  g_mutex_clear (&((DsStandinTracker *) object)->lock);
  G_OBJECT_CLASS (ds_standin_tracker_parent_class)->finalize (object);
}

static void
ds_standin_tracker_class_init (DsStandinTrackerClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GstElementClass *ec = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *bc = GST_BASE_TRANSFORM_CLASS (klass);

  GST_DEBUG_CATEGORY_INIT (tracker_debug, "dsstandintracker", 0, "nvtracker stand-in");
  oc->set_property = tracker_set_property;
  oc->get_property = tracker_get_property;
  oc->finalize = tracker_finalize;
  g_object_class_install_property (oc, PROP_RESET_MODE,
      g_param_spec_uint ("tracking-id-reset-mode", "Tracking ID reset mode",
          "bit 0: stream reset drops tracks; bit 1: stream EOS does", 0, 3, 1,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS));
  ds_standin_props_install (oc, PROP_ACCEPTED, accepted_props,
      G_N_ELEMENTS (accepted_props));
  bc->transform_ip = tracker_transform_ip;
  bc->transform_ip_on_passthrough = TRUE;
  bc->sink_event = tracker_sink_event;
  gst_element_class_add_static_pad_template (ec, &sink_template);
  gst_element_class_add_static_pad_template (ec, &src_template);
  gst_element_class_set_static_metadata (ec, "nvtracker (DeepStream stand-in)", "Filter",
      "Models nvtracker's IDs and resets (test code)", "ds-analysis");
}

static void
ds_standin_tracker_init (DsStandinTracker *self)
{
  g_mutex_init (&self->lock);
  self->reset_mode = 1;
  ds_standin_props_init (&self->accepted, PROP_ACCEPTED, accepted_props,
      G_N_ELEMENTS (accepted_props));
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
}
