/* ds-standin-app: deepstream-app's main() order around the real adapter, on the stand-in
 * plugin's elements, so the adapter (ds-app-adapter.c) and the shim run in CI without
 * DeepStream.
 *
 * Like deepstream_app_main.c: build the pipeline from the config with the element names
 * deepstream-app uses (URI slots laid out as NvDsSrcBin: uridecodebin, which plugs the
 * stand-in nvv4l2decoder, → tee → queue → nvvideoconvert → capsfilter (NVMM) → ghost
 * `src` → nvstreammux sink_<i>, plus a tee branch to a fakesink; nvstreammux →
 * [primary GIE: queue → nvinfer] → tracker: queue → nvtracker → sink, all sinks sync=0
 * async=0), set PAUSED, ds_app_hooks_attach, PLAYING, a bus watch that quits on ERROR
 * and EOS, a 40 ms timer that quits the loop once appCtx->quit is set, SIGINT quits;
 * then `done:` ds_app_hooks_detach and the teardown (EOS into the pipeline, NULL).
 *
 * The config is deepstream-app's own format ([sourceK] type=2/3, [streammux], [tracker],
 * [primary-gie], [tests]); its [standin] group switches the modelled behaviours: the
 * plugin reads it from DS_STANDIN_CONFIG, which this app sets to its -c (README.md).
 * The plugin is loaded from DS_STANDIN_PLUGIN, else from where the build put it.
 * With DS_STANDIN_STATS=<path> it writes what the elements counted, and every main-loop
 * gap over 10 ms with the part of it the main thread waited for a CPU, as JSON at exit.
 * Test code only. */
#include <glib-unix.h>
#include <gst/gst.h>
#include <json-glib/json-glib.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deepstream_app.h"
#include "ds-app-hooks.h"
#include "ds-standin.h"

#define LOOP_PROBE_MS 2
#define LOOP_GAP_NS (10 * G_GINT64_CONSTANT (1000000))

static GMainLoop *loop;
static AppCtx *app;
static gint64 loop_last_ns;
static gint64 loop_last_wait_ns;
static gint sched_fd = -1;
/* triples of gint64: end of the gap, its length, and how much of it the main thread
 * spent runnable but waiting for a CPU (ns) */
static GArray *loop_gaps;

static gint64
now_ns (void)
{
  return g_get_monotonic_time () * 1000;
}

/* ---------- config ---------- */

static gint
key_int (GKeyFile *kf, const gchar *group, const gchar *key, gint def)
{
  GError *err = NULL;
  gint v = g_key_file_get_integer (kf, group, key, &err);

  if (err != NULL) {
    g_error_free (err);
    return def;
  }
  return v;
}

static gboolean
load_config (const gchar *path, NvDsConfig *config, guint *batch_size, gint *push_timeout,
    gboolean *drop_eos, GError **error)
{
  GKeyFile *kf = g_key_file_new ();
  gchar **groups;
  guint n = 0;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, error)) {
    g_key_file_free (kf);
    return FALSE;
  }
  /* deepstream-app's own numbering of its sources, written apart from the adapter's
   * (ds_slot_config_sources) on purpose: this stands for NVIDIA's parser. */
  groups = g_key_file_get_groups (kf, NULL);
  for (gchar **g = groups; *g != NULL; g++) {
    gint type, count;
    gchar *uri;
    if (!g_str_has_prefix (*g, "source") || !g_ascii_isdigit ((*g)[6]))
      continue;
    if (!key_int (kf, *g, "enable", 0))
      continue;
    type = key_int (kf, *g, "type", 0);
    count = type == NV_DS_SOURCE_URI_MULTIPLE ? key_int (kf, *g, "num-sources", 1) : 1;
    uri = g_key_file_get_string (kf, *g, "uri", NULL);
    for (gint i = 0; i < count && n < MAX_SOURCE_BINS; i++, n++) {
      NvDsSourceConfig *s = &config->multi_source_config[n];
      /* deepstream-app expands a MultiURI group into plain URI sources */
      s->type = type == NV_DS_SOURCE_URI_MULTIPLE ? NV_DS_SOURCE_URI : (NvDsSourceType) type;
      s->enable = TRUE;
      s->gpu_id = (guint) key_int (kf, *g, "gpu-id", 0);
      s->uri = g_strdup (uri);
    }
    g_free (uri);
  }
  g_strfreev (groups);
  config->num_source_sub_bins = n;
  config->file_loop = key_int (kf, "tests", "file-loop", 0);
  config->pipeline_recreate_sec = (guint) key_int (kf, "application",
      "pipeline-recreate-sec", 0);
  config->use_nvmultiurisrcbin = key_int (kf, "source-list", "use-nvmultiurisrcbin", 0);
  config->streammux_config.gpu_id = (guint) key_int (kf, "streammux", "gpu-id", 0);
  *batch_size = (guint) MAX (1, key_int (kf, "streammux", "batch-size", 1));
  *push_timeout = key_int (kf, "streammux", "batched-push-timeout", 40000);
  *drop_eos = key_int (kf, "streammux", "drop-pipeline-eos", 0);
  config->primary_gie_config.enable = key_int (kf, "primary-gie", "enable", 0);
  config->primary_gie_config.gpu_id = (guint) key_int (kf, "primary-gie", "gpu-id", 0);
  config->tracker_config.enable = key_int (kf, "tracker", "enable", 0);
  config->tracker_config.gpu_id = (guint) key_int (kf, "tracker", "gpu-id", 0);
  /* deepstream-app's parser default, not the element's */
  config->tracker_config.tracking_id_reset_mode = (guint) key_int (kf, "tracker",
      "tracking-id-reset-mode", 0);
  g_key_file_free (kf);
  if (n == 0) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
        "no enabled [sourceK] group");
    return FALSE;
  }
  return TRUE;
}

/* The plugin takes its [standin] switches from DS_STANDIN_CONFIG: ours unless set. */
static gboolean
load_plugin (const gchar *cfg)
{
  const gchar *path = g_getenv ("DS_STANDIN_PLUGIN");
  GstPlugin *plugin;
  GError *err = NULL;

  if (cfg != NULL && g_file_test (cfg, G_FILE_TEST_IS_REGULAR)
      && g_getenv ("DS_STANDIN_CONFIG") == NULL) {
    gchar *abs = g_canonicalize_filename (cfg, NULL);
    g_setenv ("DS_STANDIN_CONFIG", abs, TRUE);
    g_free (abs);
  }
  if (path == NULL || path[0] == '\0')
    path = DS_STANDIN_PLUGIN_PATH;
  plugin = gst_plugin_load_file (path, &err);
  if (plugin == NULL) {
    g_printerr ("stand-in plugin %s: %s\n", path, err->message);
    g_error_free (err);
    return FALSE;
  }
  gst_object_unref (plugin);
  return TRUE;
}

/* ---------- pipeline ---------- */

static GstElement *
make (const gchar *factory, const gchar *name)
{
  GstElement *e = gst_element_factory_make (factory, name);

  if (e == NULL)
    g_printerr ("cannot create %s\n", factory);
  return e;
}

static void
on_decoder_pad (GstElement *decodebin, GstPad *pad, gpointer data)
{
  NvDsSrcBin *bin = data;
  GstCaps *caps = gst_pad_get_current_caps (pad);
  GstPad *sink;

  (void) decodebin;
  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  if (!g_str_has_prefix (gst_structure_get_name (gst_caps_get_structure (caps, 0)),
          "video/")) {
    gst_caps_unref (caps);
    return;
  }
  gst_caps_unref (caps);
  sink = gst_element_get_static_pad (bin->tee, "sink");
  if (!gst_pad_is_linked (sink) && gst_pad_link (pad, sink) != GST_PAD_LINK_OK)
    g_printerr ("cannot link the decoder\n");
  gst_object_unref (sink);
}

static gboolean
make_source_bin (NvDsSrcBin *bin, NvDsSourceConfig *config, guint index)
{
  gchar name[32];
  GstCaps *caps;
  GstPad *pad;

  g_snprintf (name, sizeof (name), "src_sub_bin%u", index);
  bin->bin = gst_bin_new (name);
  bin->config = config;
  bin->src_elem = make ("uridecodebin", "src_elem");
  bin->tee = make ("tee", NULL);
  bin->queue = make ("queue", "queue");
  bin->conv = make ("nvvideoconvert", "nvvidconv_elem");
  bin->cap_filter1 = make ("capsfilter", "src_cap_filter_nvvidconv");
  bin->fakequeue = make ("queue", "fakequeue");
  bin->fakesink = make ("fakesink", "src_fakesink");
  if (bin->src_elem == NULL || bin->tee == NULL
      || bin->queue == NULL || bin->conv == NULL || bin->cap_filter1 == NULL
      || bin->fakequeue == NULL || bin->fakesink == NULL)
    return FALSE;
  g_object_set (bin->src_elem, "uri", config->uri, NULL);
  g_object_set (bin->conv, "gpu-id", config->gpu_id, "nvbuf-memory-type", 0, NULL);
  caps = gst_caps_from_string ("video/x-raw(memory:NVMM)");
  g_object_set (bin->cap_filter1, "caps", caps, NULL);
  gst_caps_unref (caps);
  g_object_set (bin->fakesink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE,
      NULL);
  g_signal_connect (bin->src_elem, "pad-added", G_CALLBACK (on_decoder_pad), bin);
  gst_bin_add_many (GST_BIN (bin->bin), bin->src_elem, bin->tee, bin->queue,
      bin->conv, bin->cap_filter1, bin->fakequeue, bin->fakesink, NULL);
  if (!gst_element_link_many (bin->tee, bin->queue, bin->conv,
          bin->cap_filter1, NULL)
      || !gst_element_link_many (bin->tee, bin->fakequeue, bin->fakesink, NULL))
    return FALSE;
  pad = gst_element_get_static_pad (bin->cap_filter1, "src");
  gst_element_add_pad (bin->bin, gst_ghost_pad_new ("src", pad));
  gst_object_unref (pad);
  return TRUE;
}

/* A bin with ghost pads around a chain of elements. */
static GstElement *
wrap_bin (const gchar *name, GstElement *first, GstElement *last)
{
  GstElement *bin = gst_bin_new (name);
  GstPad *pad;

  gst_bin_add (GST_BIN (bin), first);
  if (last != first) {
    gst_bin_add (GST_BIN (bin), last);
    gst_element_link (first, last);
  }
  pad = gst_element_get_static_pad (first, "sink");
  gst_element_add_pad (bin, gst_ghost_pad_new ("sink", pad));
  gst_object_unref (pad);
  pad = gst_element_get_static_pad (last, "src");
  gst_element_add_pad (bin, gst_ghost_pad_new ("src", pad));
  gst_object_unref (pad);
  return bin;
}

static gboolean
create_pipeline (AppCtx *ctx, guint batch_size, gint push_timeout, gboolean drop_eos)
{
  NvDsPipeline *p = &ctx->pipeline;
  NvDsSrcParentBin *srcs = &p->multi_src_bin;
  GstElement *last;
  GstPad *pad;

  p->pipeline = gst_pipeline_new ("pipeline");
  srcs->bin = gst_bin_new ("multi_src_bin");
  srcs->streammux = make ("nvstreammux", "src_bin_muxer");
  if (srcs->streammux == NULL)
    return FALSE;
  g_object_set (srcs->streammux, "batch-size", batch_size, "batched-push-timeout",
      push_timeout, "drop-pipeline-eos", drop_eos, "width", 1920, "height", 1080,
      "live-source", FALSE, "sync-inputs", FALSE, NULL);
  gst_bin_add (GST_BIN (srcs->bin), srcs->streammux);
  for (guint i = 0; i < ctx->config.num_source_sub_bins; i++) {
    NvDsSrcBin *sub = &srcs->sub_bins[i];
    gchar pad_name[32];
    GstPad *src, *sink;
    if (!make_source_bin (sub, &ctx->config.multi_source_config[i], i))
      return FALSE;
    gst_bin_add (GST_BIN (srcs->bin), sub->bin);
    g_snprintf (pad_name, sizeof (pad_name), "sink_%u", i);
    sink = gst_element_request_pad_simple (srcs->streammux, pad_name);
    src = gst_element_get_static_pad (sub->bin, "src");
    if (sink == NULL || gst_pad_link (src, sink) != GST_PAD_LINK_OK)
      return FALSE;
    gst_object_unref (src);
    gst_object_unref (sink);
    srcs->num_bins++;
  }
  pad = gst_element_get_static_pad (srcs->streammux, "src");
  gst_element_add_pad (srcs->bin, gst_ghost_pad_new ("src", pad));
  gst_object_unref (pad);
  gst_bin_add (GST_BIN (p->pipeline), srcs->bin);
  last = srcs->bin;

  if (ctx->config.primary_gie_config.enable) {
    p->common_elements.primary_gie_bin.bin = wrap_bin ("primary_gie_bin",
        make ("queue", "primary_gie_queue"), make ("nvinfer", "primary_gie"));
    gst_bin_add (GST_BIN (p->pipeline), p->common_elements.primary_gie_bin.bin);
    gst_element_link (last, p->common_elements.primary_gie_bin.bin);
    last = p->common_elements.primary_gie_bin.bin;
  }
  if (ctx->config.tracker_config.enable) {
    NvDsTrackerBin *t = &p->common_elements.tracker_bin;
    t->tracker = make ("nvtracker", "tracking_tracker");
    g_object_set (t->tracker, "tracking-id-reset-mode",
        ctx->config.tracker_config.tracking_id_reset_mode, NULL);
    t->bin = wrap_bin ("tracking_bin", make ("queue", "tracking_queue"), t->tracker);
    gst_bin_add (GST_BIN (p->pipeline), t->bin);
    gst_element_link (last, t->bin);
    last = t->bin;
  }
  p->sink = make ("dsstandinsink", "sink_sub_bin_sink1");
  g_object_set (p->sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, NULL);
  gst_bin_add (GST_BIN (p->pipeline), p->sink);
  return gst_element_link (last, p->sink);
}

/* ---------- main loop ---------- */

static gboolean
bus_callback (GstBus *bus, GstMessage *msg, gpointer data)
{
  (void) bus;
  (void) data;
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR: {
      GError *err = NULL;
      gchar *debug = NULL;
      gst_message_parse_error (msg, &err, &debug);
      g_printerr ("ERROR from %s: %s\n", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
          err->message);
      g_clear_error (&err);
      g_free (debug);
      app->quit = TRUE;
      break;
    }
    case GST_MESSAGE_EOS:
      g_printerr ("pipeline EOS\n");
      app->quit = TRUE;
      return FALSE; /* as the stock app: the watch is gone for good */
    default:
      break;
  }
  return TRUE;
}

static gboolean
event_thread_func (gpointer data)
{
  (void) data;
  if (app->quit) {
    g_main_loop_quit (loop);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static gboolean
on_sigint (gpointer data)
{
  (void) data;
  app->quit = TRUE;
  return G_SOURCE_REMOVE;
}

/* The main thread's time spent waiting on a run queue (schedstat's second field), so a
 * gap that a loaded machine caused can be told from one the main loop caused. */
static gint64
runqueue_wait_ns (void)
{
  gchar buf[128];
  ssize_t n;

  if (sched_fd < 0 || (n = pread (sched_fd, buf, sizeof (buf) - 1, 0)) <= 0)
    return 0;
  buf[n] = '\0';
  return g_ascii_strtoll (strchr (buf, ' ') != NULL ? strchr (buf, ' ') + 1 : "0", NULL, 10);
}

static gboolean
loop_probe (gpointer data)
{
  gint64 now = now_ns (), gap = now - loop_last_ns, wait = runqueue_wait_ns ();

  (void) data;
  if (gap > LOOP_GAP_NS) {
    gint64 waited = wait - loop_last_wait_ns;
    g_array_append_val (loop_gaps, now);
    g_array_append_val (loop_gaps, gap);
    g_array_append_val (loop_gaps, waited);
  }
  loop_last_ns = now;
  loop_last_wait_ns = wait;
  return G_SOURCE_CONTINUE;
}

static void
write_stats (const gchar *path)
{
  DsStandinStats s = ds_standin_stats_get ();
  JsonBuilder *b = json_builder_new ();
  JsonGenerator *gen = json_generator_new ();
  JsonNode *root;
  GError *err = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "poisoned_reads");
  json_builder_add_int_value (b, s.poisoned_reads);
  json_builder_set_member_name (b, "surfaces_poisoned");
  json_builder_add_int_value (b, s.surfaces_poisoned);
  json_builder_set_member_name (b, "surface_wait_max_ns");
  json_builder_add_int_value (b, s.surface_wait_max_ns);
  json_builder_set_member_name (b, "flushes_forwarded");
  json_builder_add_int_value (b, s.flushes_forwarded);
  json_builder_set_member_name (b, "dropped_at_eos");
  json_builder_add_int_value (b, s.dropped_at_eos);
  json_builder_set_member_name (b, "resets_flushed");
  json_builder_add_int_value (b, s.resets_flushed);
  json_builder_set_member_name (b, "decoder_starts");
  json_builder_add_int_value (b, s.decoder_starts);
  json_builder_set_member_name (b, "batches");
  json_builder_add_int_value (b, s.batches);
  json_builder_set_member_name (b, "timeout_pushes");
  json_builder_add_int_value (b, s.timeout_pushes);
  json_builder_set_member_name (b, "frames");
  json_builder_add_int_value (b, s.frames);
  json_builder_set_member_name (b, "loop_gaps");
  json_builder_begin_array (b);
  for (guint i = 0; i + 2 < loop_gaps->len; i += 3) {
    json_builder_begin_array (b);
    for (guint k = 0; k < 3; k++)
      json_builder_add_int_value (b, g_array_index (loop_gaps, gint64, i + k));
    json_builder_end_array (b);
  }
  json_builder_end_array (b);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  json_generator_set_root (gen, root);
  if (!json_generator_to_file (gen, path, &err)) {
    g_printerr ("stats: %s\n", err->message);
    g_error_free (err);
  }
  json_node_unref (root);
  g_object_unref (gen);
  g_object_unref (b);
}

int
main (int argc, char **argv)
{
  gchar *cfg = NULL;
  GOptionEntry entries[] = {
    { "cfg-file", 'c', 0, G_OPTION_ARG_FILENAME, &cfg, "config file", "FILE" },
    { NULL, 0, 0, 0, NULL, NULL, NULL }
  };
  GOptionContext *ctx = g_option_context_new (NULL);
  GError *err = NULL;
  guint batch_size = 1;
  gint push_timeout = 40000;
  gboolean drop_eos = FALSE;
  const gchar *stats_path = g_getenv ("DS_STANDIN_STATS");
  GstBus *bus = NULL;
  gint rv;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    g_printerr ("%s\n", err->message);
    g_error_free (err);
    g_option_context_free (ctx);
    return 255;
  }
  g_option_context_free (ctx);
  if (!load_plugin (cfg)) {
    g_free (cfg);
    gst_deinit ();
    return 255;
  }
  loop_gaps = g_array_new (FALSE, FALSE, sizeof (gint64));

  app = g_new0 (AppCtx, 1);
  if (cfg == NULL || !load_config (cfg, &app->config, &batch_size, &push_timeout,
          &drop_eos, &err)) {
    g_printerr ("config: %s\n", err != NULL ? err->message : "no -c file");
    g_clear_error (&err);
    app->return_value = -1;
    goto cleanup;
  }
  if (!create_pipeline (app, batch_size, push_timeout, drop_eos)) {
    g_printerr ("failed to create the pipeline\n");
    app->return_value = -1;
    goto done;
  }
  loop = g_main_loop_new (NULL, FALSE);
  bus = gst_pipeline_get_bus (GST_PIPELINE (app->pipeline.pipeline));
  gst_bus_add_watch (bus, bus_callback, NULL);
  g_unix_signal_add (SIGINT, on_sigint, NULL);

  if (gst_element_set_state (app->pipeline.pipeline, GST_STATE_PAUSED)
      == GST_STATE_CHANGE_FAILURE) {
    g_printerr ("Failed to set pipeline to PAUSED\n");
    app->return_value = -1;
    goto done;
  }
  if (!ds_app_hooks_attach (&app, 1)) {
    app->return_value = -1;
    goto done;
  }
  if (gst_element_set_state (app->pipeline.pipeline, GST_STATE_PLAYING)
      == GST_STATE_CHANGE_FAILURE) {
    g_printerr ("Can't set pipeline to playing state.\n");
    app->return_value = -1;
    goto done;
  }
  g_timeout_add (40, event_thread_func, NULL);
  sched_fd = open ("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  loop_last_ns = now_ns ();
  loop_last_wait_ns = runqueue_wait_ns ();
  g_timeout_add (LOOP_PROBE_MS, loop_probe, NULL);
  g_main_loop_run (loop);

done:
  ds_app_hooks_detach ();
  if (app->pipeline.pipeline != NULL) {
    gst_element_send_event (app->pipeline.pipeline, gst_event_new_eos ());
    gst_element_set_state (app->pipeline.pipeline, GST_STATE_NULL);
    gst_object_unref (app->pipeline.pipeline);
  }
  if (bus != NULL) {
    gst_bus_remove_watch (bus);
    gst_object_unref (bus);
  }
  if (loop != NULL)
    g_main_loop_unref (loop);
cleanup:
  if (stats_path != NULL)
    write_stats (stats_path);
  if (sched_fd >= 0)
    close (sched_fd);
  rv = app->return_value;
  for (guint i = 0; i < app->config.num_source_sub_bins; i++)
    g_free (app->config.multi_source_config[i].uri);
  g_free (app);
  g_array_unref (loop_gaps);
  g_free (cfg);
  gst_deinit ();
  return rv == 0 ? 0 : 255;
}
