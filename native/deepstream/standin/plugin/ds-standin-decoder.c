/* nvv4l2decoder: what the stock source bin gets when decodebin picks NVIDIA's decoder
 * for an H.264 stream: a bin of avdec_h264 (the decoding, on the CPU) and
 * dsstandinsurfaces (the decoder's pool of output surfaces and the cost of a decoder
 * session). Ranked above avdec_h264, so uridecodebin plugs it as it plugs nvv4l2decoder
 * on DeepStream: a new one for every file, configured by deepstream-app's
 * decodebin_child_added. Every property that callback sets is accepted and kept.
 * Test code, see ../README.md. */
#include "ds-standin-elements.h"
#include "ds-standin-props.h"

typedef struct {
  GstBin parent;
  GstElement *surfaces;
  DsStandinProps accepted;
} DsStandinDecoder;

typedef struct {
  GstBinClass parent_class;
} DsStandinDecoderClass;

G_DEFINE_TYPE (DsStandinDecoder, ds_standin_decoder, GST_TYPE_BIN)

/* The pool's switches, passed to dsstandinsurfaces. */
static const gchar *const forwarded[] = {
  "max-surfaces", "poison", "block-timeout-ms", "decoder-create-ms",
};

enum { PROP_0, PROP_FORWARDED, PROP_ACCEPTED = PROP_FORWARDED + G_N_ELEMENTS (forwarded) };

/* What deepstream_source_bin.c's decodebin_child_added sets on an nvv4l2decoder. */
static const DsStandinProp accepted_props[] = {
  { "gpu-id", G_TYPE_UINT }, { "cudadec-memtype", G_TYPE_UINT },
  { "num-extra-surfaces", G_TYPE_UINT }, { "drop-frame-interval", G_TYPE_UINT },
  { "extract-sei-type5-data", G_TYPE_BOOLEAN }, { "low-latency-mode", G_TYPE_BOOLEAN },
  { "skip-frames", G_TYPE_UINT }, { "enable-max-performance", G_TYPE_BOOLEAN },
};

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS ("video/x-h264, alignment = (string) au, "
        "stream-format = (string) { avc, byte-stream }"));
static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS ("video/x-raw"));

static void
decoder_set_property (GObject *object, guint id, const GValue *value, GParamSpec *pspec)
{
  DsStandinDecoder *self = (DsStandinDecoder *) object;

  if (id >= PROP_FORWARDED && id < PROP_ACCEPTED)
    g_object_set_property (G_OBJECT (self->surfaces), forwarded[id - PROP_FORWARDED], value);
  else if (!ds_standin_props_set (&self->accepted, id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
decoder_get_property (GObject *object, guint id, GValue *value, GParamSpec *pspec)
{
  DsStandinDecoder *self = (DsStandinDecoder *) object;

  if (id >= PROP_FORWARDED && id < PROP_ACCEPTED)
    g_object_get_property (G_OBJECT (self->surfaces), forwarded[id - PROP_FORWARDED], value);
  else if (!ds_standin_props_get (&self->accepted, id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
decoder_finalize (GObject *object)
{
  ds_standin_props_clear (&((DsStandinDecoder *) object)->accepted);
  G_OBJECT_CLASS (ds_standin_decoder_parent_class)->finalize (object);
}

static void
ds_standin_decoder_class_init (DsStandinDecoderClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS (klass);
  GstElementClass *ec = GST_ELEMENT_CLASS (klass);
  GObjectClass *pool = g_type_class_ref (ds_standin_surfaces_get_type ());

  oc->set_property = decoder_set_property;
  oc->get_property = decoder_get_property;
  oc->finalize = decoder_finalize;
  for (guint i = 0; i < G_N_ELEMENTS (forwarded); i++) {
    GParamSpec *p = g_object_class_find_property (pool, forwarded[i]);
    g_object_class_install_property (oc, PROP_FORWARDED + i, g_param_spec_override (
            forwarded[i], p));
  }
  g_type_class_unref (pool);
  ds_standin_props_install (oc, PROP_ACCEPTED, accepted_props,
      G_N_ELEMENTS (accepted_props));
  gst_element_class_add_static_pad_template (ec, &sink_template);
  gst_element_class_add_static_pad_template (ec, &src_template);
  gst_element_class_set_static_metadata (ec, "nvv4l2decoder (DeepStream stand-in)",
      "Codec/Decoder/Video/Hardware", "avdec_h264 behind a model of a hardware "
      "decoder's surface pool (test code)", "ds-analysis");
}

static void
add_ghost (DsStandinDecoder *self, GstElement *inner, const gchar *name,
    GstStaticPadTemplate *templ)
{
  GstPad *pad = gst_element_get_static_pad (inner, name);
  GstPadTemplate *t = gst_static_pad_template_get (templ);

  gst_element_add_pad (GST_ELEMENT (self), gst_ghost_pad_new_from_template (name, pad, t));
  gst_object_unref (t);
  gst_object_unref (pad);
}

static void
ds_standin_decoder_init (DsStandinDecoder *self)
{
  GstElement *dec = gst_element_factory_make ("avdec_h264", "standin_avdec");

  self->surfaces = g_object_new (ds_standin_surfaces_get_type (), "name",
      "standin_surfaces", NULL);
  ds_standin_props_init (&self->accepted, PROP_ACCEPTED, accepted_props,
      G_N_ELEMENTS (accepted_props));
  gst_bin_add (GST_BIN (self), self->surfaces);
  if (dec == NULL) {
    /* no pads: decodebin fails to link it and the file fails */
    g_critical ("DeepStream stand-in: nvv4l2decoder needs avdec_h264 (gstreamer1.0-libav)");
    return;
  }
  gst_bin_add (GST_BIN (self), dec);
  gst_element_link (dec, self->surfaces);
  add_ghost (self, dec, "sink", &sink_template);
  add_ghost (self, self->surfaces, "src", &src_template);
}
