/* DsTrack: the DeepStream-free decisions of the deepstream-app adapter (ds-track.h). */
#include "ds-track.h"

#include <math.h>
#include <string.h>

void
ds_track_slot_init (DsTrackSlot *slot, guint index)
{
  memset (slot, 0, sizeof (*slot));
  ds_slot_book_init (&slot->book, index);
  slot->first_pts_ns = -1;
  slot->drain_since_ns = -1;
  slot->discard_since_ns = -1;
  /* Whatever went through the slot before we took it over (the placeholder) may have
   * left tracker state behind: the first camera starts with a reset. */
  slot->camera_dirty = TRUE;
}

void
ds_track_slot_clear (DsTrackSlot *slot)
{
  ds_slot_book_clear (&slot->book);
}

/* The book has restarted its camera count: the tracker's state of the slot goes too,
 * with a stream reset, when frames went in since the last one. */
static void
ask_reset (DsTrackSlot *slot, gboolean *send_reset)
{
  *send_reset = slot->camera_dirty;
  if (slot->camera_dirty) {
    slot->pending_resets++;
    slot->camera_dirty = FALSE;
  }
}

gboolean
ds_track_slot_begin (DsTrackSlot *slot, gint64 file_id, gboolean new_camera,
    const gchar *output_path, gboolean *send_reset, GError **error)
{
  *send_reset = FALSE;
  if (!ds_slot_book_begin (&slot->book, file_id, new_camera, output_path, error))
    return FALSE;
  if (new_camera)
    ask_reset (slot, send_reset);
  slot->seen = 0;
  slot->camera_base = slot->book.camera_frames;
  slot->first_pts_ns = -1;
  slot->drain_since_ns = -1;
  return TRUE;
}

DsSlotFrame
ds_track_slot_source_frame (DsTrackSlot *slot, gint64 pts_ns, gint64 mono_ns)
{
  gint64 position = slot->book.position_ns; /* a frame without PTS: as before it */

  if (!ds_slot_book_active (&slot->book))
    return DS_SLOT_FRAME_IGNORED;
  if (pts_ns >= 0) {
    if (slot->first_pts_ns < 0)
      slot->first_pts_ns = pts_ns;
    position = pts_ns - slot->first_pts_ns;
  }
  slot->camera_dirty = TRUE;
  return ds_slot_book_frame (&slot->book, position, mono_ns);
}

gboolean
ds_track_slot_source_end (DsTrackSlot *slot, const gchar *error, gint64 now_ns)
{
  if (!ds_slot_book_drain (&slot->book, error))
    return FALSE;
  slot->drain_since_ns = now_ns;
  return slot->seen >= slot->book.frames;
}

static void
write_frame (DsTrackSlot *slot, gint64 pts_ns, const DsTrackObject *objects,
    guint n_objects)
{
  GString *line;

  if (!ds_slot_output_writable (&slot->book.out) || n_objects == 0)
    return;
  line = g_string_sized_new (160);
  for (guint i = 0; i < n_objects; i++) {
    g_string_truncate (line, 0);
    ds_track_format_object (line, &objects[i], slot->seen,
        slot->camera_base + slot->seen, pts_ns);
    g_string_append_c (line, '\n');
    if (!ds_slot_output_write (&slot->book.out, line->str, line->len))
      break;
  }
  g_string_free (line, TRUE);
}

DsTrackSinkResult
ds_track_slot_sink_frame (DsTrackSlot *slot, gint64 pts_ns,
    const DsTrackObject *objects, guint n_objects, gint64 now_ns,
    gint64 reset_timeout_ns)
{
  if (slot->pending_resets > 0) {
    /* Frames ahead of a pending reset belong to a stopped file. If the reset never
     * shows up (a muxer that does not forward it), stop waiting for it. */
    if (slot->discard_since_ns < 0)
      slot->discard_since_ns = now_ns;
    if (reset_timeout_ns < 0 || now_ns - slot->discard_since_ns <= reset_timeout_ns) {
      /* Behind the resets that were ahead of them, the leftovers of an ended file. */
      if (slot->leftover_gate == 0 && slot->leftover > 0)
        slot->leftover--;
      return DS_TRACK_SINK_DISCARDED;
    }
    g_warning ("stream reset not seen after the tracker within %" G_GINT64_FORMAT
        " ms; attributing frames again", reset_timeout_ns / 1000000);
    slot->pending_resets = 0;
    slot->resets_in_muxer = 0; /* given up with them */
    slot->leftover_gate = 0;
    slot->discard_since_ns = -1;
  }
  if (slot->leftover > 0) {
    /* A late frame of a file that was finished without it (drain deadline). */
    slot->leftover--;
    return DS_TRACK_SINK_DISCARDED;
  }
  if (!ds_slot_book_busy (&slot->book) || slot->seen >= slot->book.frames)
    return DS_TRACK_SINK_DISCARDED;

  write_frame (slot, pts_ns, objects, n_objects);
  slot->seen++;
  if (slot->book.phase == DS_SLOT_PHASE_DRAINING) {
    slot->drain_since_ns = now_ns;
    if (slot->seen >= slot->book.frames)
      return DS_TRACK_SINK_COMPLETE;
  }
  return DS_TRACK_SINK_RECORDED;
}

void
ds_track_slot_sink_reset (DsTrackSlot *slot)
{
  if (slot->pending_resets > 0)
    slot->pending_resets--;
  slot->discard_since_ns = -1;
  /* A reset sent after a file ended short follows its late frames: none can come now. */
  if (slot->leftover_gate > 0)
    slot->leftover_gate--;
  else
    slot->leftover = 0;
}

void
ds_track_slot_restart_camera (DsTrackSlot *slot, gboolean *send_reset)
{
  ds_slot_book_restart_camera (&slot->book);
  ask_reset (slot, send_reset);
  /* Every earlier frame of the file has left the tracker by now (the outage was long):
   * the next one to leave it is camera frame 0 (unsigned, wraps back in the sum). */
  slot->camera_base = (guint64) 0 - slot->seen;
}

void
ds_track_slot_reset_not_sent (DsTrackSlot *slot)
{
  /* The reset asked for last: the ones ahead of any leftovers are still on their way. */
  if (slot->resets_in_muxer > 0)
    slot->resets_in_muxer--;
  if (slot->pending_resets > 0)
    slot->pending_resets--;
  if (slot->pending_resets == 0)
    slot->discard_since_ns = -1;
  slot->leftover_gate = MIN (slot->leftover_gate, slot->pending_resets);
}

void
ds_track_slot_reset_sent (DsTrackSlot *slot)
{
  slot->resets_in_muxer++;
}

void
ds_track_slot_mux_reset (DsTrackSlot *slot)
{
  /* None counted: one sent before a flush that the muxer had already taken in hand. It
   * is ahead of the next reset and no frame of the slot is between them (the frames
   * behind it were flushed), so it may settle one pending reset early. */
  if (slot->resets_in_muxer > 0)
    slot->resets_in_muxer--;
}

guint
ds_track_slot_mux_flushed (DsTrackSlot *slot)
{
  guint lost = MIN (slot->resets_in_muxer, slot->pending_resets);

  slot->resets_in_muxer = 0;
  if (lost == 0)
    return 0;
  /* The lost ones are the last sent; a reset asked for but not sent yet stays. */
  slot->pending_resets -= lost;
  slot->leftover_gate = MIN (slot->leftover_gate, slot->pending_resets);
  if (slot->pending_resets == 0)
    slot->discard_since_ns = -1;
  return lost;
}

gboolean
ds_track_slot_drain_expired (const DsTrackSlot *slot, gint64 now_ns, gint64 timeout_ns)
{
  return slot->book.phase == DS_SLOT_PHASE_DRAINING
      && now_ns - slot->drain_since_ns > timeout_ns;
}

gboolean
ds_track_slot_finish (DsTrackSlot *slot, DsSlotDone *done)
{
  guint64 seen = slot->seen, pushed = slot->book.frames;

  if (!ds_slot_book_finish (&slot->book, done))
    return FALSE;
  if (seen < pushed) {
    if (done->error == NULL) {
      /* The drain deadline passed: frames were lost or are stuck in the pipeline. */
      g_warning ("file %" G_GINT64_FORMAT ": %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
          " frames left the tracker; output incomplete", done->file_id, seen, pushed);
      done->error = g_strdup_printf ("only %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
          " frames came out of the pipeline after the file ended (output incomplete)",
          seen, pushed);
    }
    /* Its missing frames may still come: they must not count for the next file. They
     * are behind every reset still in flight and ahead of any sent from now on. */
    slot->leftover += pushed - seen;
    slot->leftover_gate = slot->pending_resets;
  }
  return TRUE;
}

void
ds_track_slot_stop (DsTrackSlot *slot, DsStopResult *out, gboolean *send_reset)
{
  ds_slot_book_stop (&slot->book, out);
  ask_reset (slot, send_reset);
}

gboolean
ds_track_slot_reset (DsTrackSlot *slot, gboolean *send_reset, GError **error)
{
  *send_reset = FALSE;
  if (!ds_slot_book_reset (&slot->book, error))
    return FALSE;
  ask_reset (slot, send_reset);
  return TRUE;
}

static void
append_double (GString *out, const gchar *format, gdouble v)
{
  gchar buf[G_ASCII_DTOSTR_BUF_SIZE];

  /* Locale-independent: the app may run under a locale with a decimal comma. */
  g_string_append (out, g_ascii_formatd (buf, sizeof (buf), format, v));
}

void
ds_track_format_object (GString *out, const DsTrackObject *obj, guint64 file_frame,
    guint64 camera_frame, gint64 pts_ns)
{
  gdouble score = obj->confidence;

  g_string_append_printf (out, "%" G_GUINT64_FORMAT " %" G_GINT64_FORMAT " ", file_frame,
      obj->track_id >= 0 ? obj->track_id : -1);
  if (obj->label != NULL && obj->label[0] != '\0') {
    for (const gchar *p = obj->label; *p != '\0'; p++)
      g_string_append_c (out, (*p > ' ' && *p < 0x7f) ? *p : '_');
  } else {
    g_string_append_printf (out, "class_%d", obj->class_id);
  }
  g_string_append (out, " -1 -1 -10 ");
  append_double (out, "%.2f", obj->left);
  g_string_append_c (out, ' ');
  append_double (out, "%.2f", obj->top);
  g_string_append_c (out, ' ');
  append_double (out, "%.2f", obj->left + obj->width);
  g_string_append_c (out, ' ');
  append_double (out, "%.2f", obj->top + obj->height);
  g_string_append (out, " -1 -1 -1 -1000 -1000 -1000 -10 ");
  if (isnan (score) || score < 0)
    score = -1;
  append_double (out, "%.4f", score);
  g_string_append_printf (out, " %" G_GUINT64_FORMAT " %" G_GINT64_FORMAT " %d",
      camera_frame, pts_ns >= 0 ? pts_ns : -1, obj->class_id);
}

gchar *
ds_track_config_arg (const gchar *const *argv, gint argc)
{
  for (gint i = 1; i < argc && argv[i] != NULL; i++) {
    const gchar *a = argv[i];
    if (g_strcmp0 (a, "--") == 0)
      break;
    if (g_strcmp0 (a, "-c") == 0 || g_strcmp0 (a, "--cfg-file") == 0)
      return i + 1 < argc && argv[i + 1] != NULL ? g_strdup (argv[i + 1]) : NULL;
    if (g_str_has_prefix (a, "--cfg-file="))
      return g_strdup (a + strlen ("--cfg-file="));
    if (a[0] == '-' && a[1] == 'c' && a[2] != '\0')
      return g_strdup (a + 2);
  }
  return NULL;
}

DsTrackWatch
ds_track_watch_decide (gboolean failed, gboolean error_queued, gboolean async_pending,
    gboolean playing, gint64 elapsed_ns, gint64 deadline_ns)
{
  if (error_queued)
    return DS_TRACK_WATCH_DONE;
  if (failed)
    return DS_TRACK_WATCH_FAIL;
  if (playing)
    return DS_TRACK_WATCH_DONE;
  if (elapsed_ns >= deadline_ns)
    return DS_TRACK_WATCH_FAIL;
  return async_pending ? DS_TRACK_WATCH_WAIT : DS_TRACK_WATCH_KICK;
}

const gchar *
ds_track_check_tracker (gboolean enabled, guint tracking_id_reset_mode)
{
  if (enabled && (tracking_id_reset_mode & 1) == 0)
    return "[tracker] tracking-id-reset-mode must have bit 0 set (e.g. 1): without it "
        "the tracker ignores the stream reset of a new camera";
  return NULL;
}
