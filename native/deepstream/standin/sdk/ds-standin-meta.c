/* Stand-in batch metadata, DeepStream's custom events and the process-wide counters
 * (test code, see ../README.md). Part of the stand-in SDK library, which both the
 * stand-in plugin and the app (the stand-in app, or the real deepstream-app built by
 * hand) link, so the meta and the counters are one per process. */
#include "ds-standin.h"

#include <string.h>

DsStandinStats ds_standin_stats;
static GMutex stats_lock; /* the 64-bit fields */

void
ds_standin_stats_note_wait (gint64 ns)
{
  g_mutex_lock (&stats_lock);
  if (ns > ds_standin_stats.surface_wait_max_ns)
    ds_standin_stats.surface_wait_max_ns = ns;
  g_mutex_unlock (&stats_lock);
}

void
ds_standin_stats_add_frames (gint64 n)
{
  g_mutex_lock (&stats_lock);
  ds_standin_stats.frames += n;
  g_mutex_unlock (&stats_lock);
}

DsStandinStats
ds_standin_stats_get (void)
{
  DsStandinStats s;

  g_mutex_lock (&stats_lock);
  s = ds_standin_stats;
  g_mutex_unlock (&stats_lock);
  s.poisoned_reads = g_atomic_int_get (&ds_standin_stats.poisoned_reads);
  s.surfaces_poisoned = g_atomic_int_get (&ds_standin_stats.surfaces_poisoned);
  s.flushes_forwarded = g_atomic_int_get (&ds_standin_stats.flushes_forwarded);
  s.dropped_at_eos = g_atomic_int_get (&ds_standin_stats.dropped_at_eos);
  s.resets_flushed = g_atomic_int_get (&ds_standin_stats.resets_flushed);
  s.batches = g_atomic_int_get (&ds_standin_stats.batches);
  s.timeout_pushes = g_atomic_int_get (&ds_standin_stats.timeout_pushes);
  s.decoder_starts = g_atomic_int_get (&ds_standin_stats.decoder_starts);
  return s;
}

/* ---------- batch meta ---------- */

typedef struct {
  GstMeta meta;
  NvDsBatchMeta batch;
  GHashTable *inputs;     /* NvDsFrameMeta* → the GstBuffer it came from */
} DsStandinBatchMeta;

static GType
batch_meta_api_get_type (void)
{
  static GType type;
  static const gchar *tags[] = { NULL };

  if (g_once_init_enter (&type)) {
    GType t = gst_meta_api_type_register ("DsStandinBatchMetaAPI", tags);
    g_once_init_leave (&type, t);
  }
  return type;
}

static gboolean
batch_meta_init (GstMeta *meta, gpointer params, GstBuffer *buffer)
{
  DsStandinBatchMeta *m = (DsStandinBatchMeta *) meta;

  (void) params;
  (void) buffer;
  memset (&m->batch, 0, sizeof (m->batch));
  m->inputs = g_hash_table_new_full (NULL, NULL, NULL,
      (GDestroyNotify) gst_mini_object_unref);
  return TRUE;
}

static void
display_meta_free (gpointer data)
{
  NvDsDisplayMeta *d = data;

  for (guint i = 0; i < d->num_labels && i < MAX_ELEMENTS_IN_DISPLAY_META; i++)
    g_free (d->text_params[i].display_text);
  g_free (d);
}

static void
object_meta_free (gpointer data)
{
  NvDsObjectMeta *o = data;

  g_free (o->text_params.display_text); /* the app's label (deepstream-app process_meta) */
  g_free (o);
}

static void
frame_meta_free (gpointer data)
{
  NvDsFrameMeta *f = data;

  g_list_free_full (f->obj_meta_list, object_meta_free);
  g_list_free_full (f->display_meta_list, display_meta_free);
  g_free (f);
}

static void
batch_meta_free (GstMeta *meta, GstBuffer *buffer)
{
  DsStandinBatchMeta *m = (DsStandinBatchMeta *) meta;

  (void) buffer;
  g_hash_table_destroy (m->inputs);
  g_list_free_full (m->batch.frame_meta_list, frame_meta_free);
  m->batch.frame_meta_list = NULL;
}

static const GstMetaInfo *
batch_meta_get_info (void)
{
  static const GstMetaInfo *info;

  if (g_once_init_enter (&info)) {
    const GstMetaInfo *i = gst_meta_register (batch_meta_api_get_type (),
        "DsStandinBatchMeta", sizeof (DsStandinBatchMeta), batch_meta_init,
        batch_meta_free, NULL);
    g_once_init_leave (&info, i);
  }
  return info;
}

static DsStandinBatchMeta *
batch_wrapper (NvDsBatchMeta *batch)
{
  return (DsStandinBatchMeta *) (gpointer) ((guint8 *) batch
      - G_STRUCT_OFFSET (DsStandinBatchMeta, batch));
}

NvDsBatchMeta *
ds_standin_batch_meta_add (GstBuffer *buffer)
{
  DsStandinBatchMeta *m = (DsStandinBatchMeta *) gst_buffer_add_meta (buffer,
      batch_meta_get_info (), NULL);

  return &m->batch;
}

NvDsBatchMeta *
gst_buffer_get_nvds_batch_meta (GstBuffer *buffer)
{
  DsStandinBatchMeta *m = (DsStandinBatchMeta *) gst_buffer_get_meta (buffer,
      batch_meta_api_get_type ());

  return m != NULL ? &m->batch : NULL;
}

NvDsFrameMeta *
ds_standin_frame_meta_new (NvDsBatchMeta *batch)
{
  NvDsFrameMeta *f = g_new0 (NvDsFrameMeta, 1);

  batch->frame_meta_list = g_list_append (batch->frame_meta_list, f);
  batch->num_frames_in_batch++;
  return f;
}

NvDsObjectMeta *
ds_standin_object_meta_new (void)
{
  NvDsObjectMeta *o = g_new0 (NvDsObjectMeta, 1);

  o->object_id = UNTRACKED_OBJECT_ID;
  return o;
}

void
ds_standin_frame_hold_input (NvDsBatchMeta *batch, NvDsFrameMeta *frame, GstBuffer *input)
{
  g_hash_table_insert (batch_wrapper (batch)->inputs, frame, input);
}

GstBuffer *
ds_standin_frame_input (NvDsBatchMeta *batch, NvDsFrameMeta *frame)
{
  return g_hash_table_lookup (batch_wrapper (batch)->inputs, frame);
}

/* The SDK's display-meta calls, as deepstream-app uses them (overlay_graphics). */
NvDsDisplayMeta *
nvds_acquire_display_meta_from_pool (NvDsBatchMeta *batch_meta)
{
  (void) batch_meta;
  return g_new0 (NvDsDisplayMeta, 1);
}

void
nvds_add_display_meta_to_frame (NvDsFrameMeta *frame_meta, NvDsDisplayMeta *display_meta)
{
  if (frame_meta == NULL) {
    display_meta_free (display_meta);
    return;
  }
  frame_meta->display_meta_list = g_list_append (frame_meta->display_meta_list,
      display_meta);
}

NvDsFrameMeta *
nvds_get_nth_frame_meta (NvDsFrameMetaList *frame_meta_list, guint index)
{
  return g_list_nth_data (frame_meta_list, index);
}

/* ---------- events ---------- */

static GstEvent *
source_event_new (GstEventType type, const gchar *name, guint source_id)
{
  return gst_event_new_custom (type, gst_structure_new (name, "source-id", G_TYPE_UINT,
          source_id, NULL));
}

static void
source_event_parse (GstEvent *event, guint *source_id)
{
  const GstStructure *s = gst_event_get_structure (event);

  if (s == NULL || !gst_structure_get_uint (s, "source-id", source_id))
    *source_id = G_MAXUINT;
}

GstEvent *
gst_nvevent_new_stream_reset (guint source_id)
{
  return source_event_new ((GstEventType) GST_NVEVENT_STREAM_RESET,
      "ds-standin-stream-reset", source_id);
}

void
gst_nvevent_parse_stream_reset (GstEvent *event, guint *source_id)
{
  source_event_parse (event, source_id);
}

GstEvent *
gst_nvevent_new_stream_eos (guint source_id)
{
  return source_event_new ((GstEventType) GST_NVEVENT_STREAM_EOS,
      "ds-standin-stream-eos", source_id);
}

void
gst_nvevent_parse_stream_eos (GstEvent *event, guint *source_id)
{
  source_event_parse (event, source_id);
}
