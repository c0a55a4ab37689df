/* The DeepStream stand-in as a GStreamer plugin: our models registered under the names
 * deepstream-app creates (nvstreammux, nvtracker, nvinfer, nvvideoconvert,
 * nvmultistreamtiler, nvdsosd, nvv4l2decoder ranked for decodebin), so the stand-in app
 * and the real patched deepstream-app (README.md) both run on them.
 *
 * Test code, never installed: it refuses to load where NVIDIA's plugins are (a
 * DeepStream installation, or an nvstreammux that another plugin already provides), so
 * it can never stand in for the real ones by accident. */
#include "ds-standin-elements.h"

#define DS_ROOT_DEFAULT "/opt/nvidia/deepstream"

/* A folder GStreamer loads plugins from that holds one of NVIDIA's (libnvdsgst_*). */
static gchar *
nvidia_plugin_in (const gchar *dirs)
{
  gchar **list = g_strsplit (dirs != NULL ? dirs : "", G_SEARCHPATH_SEPARATOR_S, -1);
  gchar *found = NULL;

  for (gchar **d = list; *d != NULL && found == NULL; d++) {
    for (guint k = 0; k < 2 && found == NULL; k++) {
      /* DeepStream links its plugins into <system dir>/deepstream */
      gchar *dir = k == 0 ? g_strdup (*d) : g_build_filename (*d, "deepstream", NULL);
      GDir *gd = (*d)[0] != '\0' ? g_dir_open (dir, 0, NULL) : NULL;
      const gchar *name;
      while (gd != NULL && found == NULL && (name = g_dir_read_name (gd)) != NULL)
        if (g_str_has_prefix (name, "libnvdsgst_"))
          found = g_build_filename (dir, name, NULL);
      if (gd != NULL)
        g_dir_close (gd);
      g_free (dir);
    }
  }
  g_strfreev (list);
  return found;
}

/* NULL when the stand-in may load here, else why not (to free). Checked at load time,
 * when NVIDIA's plugins may not be in the registry yet: their files count too. */
static gchar *
nvidia_is_here (GstPlugin *self)
{
  const gchar *root = g_getenv ("DS_STANDIN_DEEPSTREAM_ROOT");
  const gchar *vars[] = { "GST_PLUGIN_PATH_1_0", "GST_PLUGIN_PATH",
    "GST_PLUGIN_SYSTEM_PATH_1_0", "GST_PLUGIN_SYSTEM_PATH" };
  GstPluginFeature *mux;
  gchar *why = NULL, *file;

  if (root == NULL || root[0] == '\0')
    root = DS_ROOT_DEFAULT;
  if (g_file_test (root, G_FILE_TEST_EXISTS))
    return g_strdup_printf ("%s exists (a DeepStream installation)", root);
  for (guint i = 0; i < G_N_ELEMENTS (vars); i++) {
    if ((file = nvidia_plugin_in (g_getenv (vars[i]))) != NULL) {
      why = g_strdup_printf ("NVIDIA's %s is on %s", file, vars[i]);
      g_free (file);
      return why;
    }
  }
  if ((file = nvidia_plugin_in (GST_SYSTEM_PLUGIN_DIR)) != NULL) {
    why = g_strdup_printf ("NVIDIA's %s is in GStreamer's plugin folder", file);
    g_free (file);
    return why;
  }
  mux = gst_registry_lookup_feature (gst_registry_get (), "nvstreammux");
  if (mux != NULL) {
    const gchar *owner = gst_plugin_feature_get_plugin_name (mux);
    if (g_strcmp0 (owner, gst_plugin_get_name (self)) != 0)
      why = g_strdup_printf ("nvstreammux is provided by plugin %s", owner);
    gst_object_unref (mux);
  }
  return why;
}

static gboolean
plugin_init (GstPlugin *plugin)
{
  gchar *why = nvidia_is_here (plugin);

  if (why != NULL) {
    g_printerr ("DeepStream stand-in plugin not loaded: %s\n", why);
    g_free (why);
    return FALSE;
  }
  /* above avdec_h264, as NVIDIA's decoder is, so decodebin picks it */
  return gst_element_register (plugin, "nvv4l2decoder", GST_RANK_PRIMARY + 11,
      ds_standin_decoder_get_type ())
      && gst_element_register (plugin, "nvstreammux", GST_RANK_NONE,
      ds_standin_mux_get_type ())
      && gst_element_register (plugin, "nvtracker", GST_RANK_NONE,
      ds_standin_tracker_get_type ())
      && gst_element_register (plugin, "dsstandinsurfaces", GST_RANK_NONE,
      ds_standin_surfaces_get_type ())
      && gst_element_register (plugin, "dsstandinsink", GST_RANK_NONE,
      ds_standin_sink_get_type ())
      && ds_standin_passthrough_register (plugin);
}

#define PACKAGE "ds-analysis"
GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, dsstandin,
    "DeepStream 7.1 stand-in for tests (never install)", plugin_init, "1.0",
    "Proprietary", "ds-analysis", "native/deepstream/standin")
