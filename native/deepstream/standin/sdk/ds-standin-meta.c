/* Stand-in batch metadata and custom events (test code, see README.md). */
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
  s.batches = g_atomic_int_get (&ds_standin_stats.batches);
  return s;
}

typedef struct {
  GstMeta meta;
  NvDsBatchMeta batch;
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
  return TRUE;
}

static void
frame_meta_free (gpointer data)
{
  NvDsFrameMeta *f = data;

  g_list_free_full (f->obj_meta_list, g_free);
  if (f->standin_input != NULL)
    gst_buffer_unref (f->standin_input);
  g_free (f);
}

static void
batch_meta_free (GstMeta *meta, GstBuffer *buffer)
{
  DsStandinBatchMeta *m = (DsStandinBatchMeta *) meta;

  (void) buffer;
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
ds_standin_frame_meta_new (void)
{
  return g_new0 (NvDsFrameMeta, 1);
}

NvDsObjectMeta *
ds_standin_object_meta_new (void)
{
  NvDsObjectMeta *o = g_new0 (NvDsObjectMeta, 1);

  o->object_id = UNTRACKED_OBJECT_ID;
  return o;
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
