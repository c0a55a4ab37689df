/* nvinfer, nvvideoconvert, nvmultistreamtiler, nvdsosd: elements of deepstream-app's
 * pipeline whose work the stand-in does not model. Buffers (and their batch meta) pass
 * untouched, whatever caps the two sides settle on: nothing in the stand-in reads the
 * pixels, and the stock caps filters around them ask for video/x-raw(memory:NVMM),
 * which these elements then claim to produce. Detections are the stand-in tracker's
 * (one object per frame). Every property deepstream-app 7.1 may set on them is accepted
 * and kept. Test code, see ../README.md. */
#include <gst/base/gstbasetransform.h>

#include "ds-standin-elements.h"
#include "ds-standin-props.h"

typedef struct {
  const gchar *factory;
  const gchar *longname;
  const gchar *klass;
  const DsStandinProp *props;
  guint n_props;
} Info;

typedef struct {
  GstBaseTransform parent;
  DsStandinProps accepted;
} DsStandinPassthrough;

typedef struct {
  GstBaseTransformClass parent_class;
  const Info *info;
} DsStandinPassthroughClass;

#define PROP_ACCEPTED 1

/* From deepstream-app 7.1's primary/secondary GIE bins. */
static const DsStandinProp infer_props[] = {
  { "config-file-path", G_TYPE_STRING }, { "process-mode", G_TYPE_UINT },
  { "input-tensor-meta", G_TYPE_BOOLEAN }, { "batch-size", G_TYPE_UINT },
  { "interval", G_TYPE_UINT }, { "unique-id", G_TYPE_UINT },
  { "raw-output-generated-callback", G_TYPE_POINTER },
  { "raw-output-generated-userdata", G_TYPE_POINTER }, { "gpu-id", G_TYPE_UINT },
  { "model-engine-file", G_TYPE_STRING }, { "infer-on-gie-id", G_TYPE_INT },
  { "infer-on-class-ids", G_TYPE_STRING }, { "output-tensor-meta", G_TYPE_BOOLEAN },
};
/* From the source, GIE, OSD, tiler and sink bins. */
static const DsStandinProp convert_props[] = {
  { "gpu-id", G_TYPE_UINT }, { "nvbuf-memory-type", G_TYPE_UINT },
  { "copy-hw", G_TYPE_UINT }, { "compute-hw", G_TYPE_UINT },
  { "interpolation-method", G_TYPE_UINT }, { "src-crop", G_TYPE_STRING },
  { "dest-crop", G_TYPE_STRING },
};
static const DsStandinProp tiler_props[] = {
  { "rows", G_TYPE_UINT }, { "columns", G_TYPE_UINT }, { "width", G_TYPE_UINT },
  { "height", G_TYPE_UINT }, { "gpu-id", G_TYPE_UINT }, { "nvbuf-memory-type", G_TYPE_UINT },
  { "buffer-pool-size", G_TYPE_UINT }, { "compute-hw", G_TYPE_UINT },
  { "square-seq-grid", G_TYPE_UINT }, { "show-source", G_TYPE_INT },
};
static const DsStandinProp osd_props[] = {
  { "display-clock", G_TYPE_BOOLEAN }, { "clock-font", G_TYPE_STRING },
  { "x-clock-offset", G_TYPE_UINT }, { "y-clock-offset", G_TYPE_UINT },
  { "clock-color", G_TYPE_UINT }, { "clock-font-size", G_TYPE_UINT },
  { "process-mode", G_TYPE_UINT }, { "gpu-id", G_TYPE_UINT },
  { "display-text", G_TYPE_BOOLEAN }, { "display-bbox", G_TYPE_BOOLEAN },
  { "display-mask", G_TYPE_BOOLEAN }, { "hw-blend-color-attr", G_TYPE_STRING },
};

static const Info infos[] = {
  { "nvinfer", "nvinfer (DeepStream stand-in)", "Filter/Video", infer_props,
    G_N_ELEMENTS (infer_props) },
  { "nvvideoconvert", "nvvideoconvert (DeepStream stand-in)", "Filter/Converter/Video",
    convert_props, G_N_ELEMENTS (convert_props) },
  { "nvmultistreamtiler", "nvmultistreamtiler (DeepStream stand-in)", "Filter/Video",
    tiler_props, G_N_ELEMENTS (tiler_props) },
  { "nvdsosd", "nvdsosd (DeepStream stand-in)", "Filter/Video", osd_props,
    G_N_ELEMENTS (osd_props) },
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static GstElementClass *parent_class;

#define INFO(obj) (((DsStandinPassthroughClass *) G_OBJECT_GET_CLASS (obj))->info)

/* Raw video on one side: raw video of any format, in system or NVMM memory, on the
 * other, the size and rate kept; anything else as it is. */
static GstCaps *
passthrough_transform_caps (GstBaseTransform *trans, GstPadDirection direction,
    GstCaps *caps, GstCaps *filter)
{
  GstCaps *out;

  (void) trans;
  (void) direction;
  if (gst_caps_is_any (caps))
    return filter != NULL ? gst_caps_ref (filter) : gst_caps_new_any ();
  out = gst_caps_new_empty ();
  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    GstStructure *st = gst_structure_copy (gst_caps_get_structure (caps, i));
    if (!gst_structure_has_name (st, "video/x-raw")) {
      gst_caps_append_structure_full (out, st,
          gst_caps_features_copy (gst_caps_get_features (caps, i)));
      continue;
    }
    gst_structure_remove_field (st, "format");
    gst_caps_append_structure_full (out, gst_structure_copy (st),
        gst_caps_features_new ("memory:NVMM", NULL));
    gst_caps_append_structure_full (out, st, gst_caps_features_new_empty ());
  }
  if (filter != NULL) {
    GstCaps *f = gst_caps_intersect_full (filter, out, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (out);
    out = f;
  }
  return out;
}

static GstFlowReturn
passthrough_transform_ip (GstBaseTransform *trans, GstBuffer *buf)
{
  (void) trans;
  (void) buf;
  return GST_FLOW_OK;
}

static void
passthrough_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  if (!ds_standin_props_set (&((DsStandinPassthrough *) object)->accepted, id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
passthrough_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  if (!ds_standin_props_get (&((DsStandinPassthrough *) object)->accepted, id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
passthrough_finalize (GObject *object)
{
  ds_standin_props_clear (&((DsStandinPassthrough *) object)->accepted);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
passthrough_class_init (gpointer g_class, gpointer class_data)
{
  DsStandinPassthroughClass *klass = g_class;
  GObjectClass *oc = G_OBJECT_CLASS (g_class);
  GstElementClass *ec = GST_ELEMENT_CLASS (g_class);
  GstBaseTransformClass *bc = GST_BASE_TRANSFORM_CLASS (g_class);
  const Info *info = class_data;

  parent_class = g_type_class_peek_parent (g_class);
  klass->info = info;
  oc->set_property = passthrough_set_property;
  oc->get_property = passthrough_get_property;
  oc->finalize = passthrough_finalize;
  ds_standin_props_install (oc, PROP_ACCEPTED, info->props, info->n_props);
  bc->transform_caps = passthrough_transform_caps;
  bc->transform_ip = passthrough_transform_ip;
  bc->transform_ip_on_passthrough = FALSE;
  gst_element_class_add_static_pad_template (ec, &sink_template);
  gst_element_class_add_static_pad_template (ec, &src_template);
  gst_element_class_set_metadata (ec, info->longname, info->klass,
      "Passes buffers through untouched (test code)", "ds-analysis");
}

static void
passthrough_init (GTypeInstance *instance, gpointer g_class)
{
  DsStandinPassthrough *self = (DsStandinPassthrough *) instance;
  const Info *info = ((DsStandinPassthroughClass *) g_class)->info;

  /* Always passthrough, even when the caps on the two sides differ (NVMM or not). */
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_prefer_passthrough (GST_BASE_TRANSFORM (self), TRUE);
  ds_standin_props_init (&self->accepted, PROP_ACCEPTED, info->props, info->n_props);
}

gboolean
ds_standin_passthrough_register (GstPlugin *plugin)
{
  for (guint i = 0; i < G_N_ELEMENTS (infos); i++) {
    GTypeInfo ti = {
      .class_size = sizeof (DsStandinPassthroughClass),
      .class_init = passthrough_class_init,
      .class_data = &infos[i],
      .instance_size = sizeof (DsStandinPassthrough),
      .instance_init = passthrough_init,
    };
    gchar *name = g_strdup_printf ("DsStandinPassthrough_%s", infos[i].factory);
    GType type = g_type_from_name (name);

    if (type == 0)
      type = g_type_register_static (GST_TYPE_BASE_TRANSFORM, name, &ti, 0);
    g_free (name);
    if (!gst_element_register (plugin, infos[i].factory, GST_RANK_NONE, type))
      return FALSE;
  }
  return TRUE;
}
