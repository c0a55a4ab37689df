/* DsSlotBook: see ds-slot-book.h. */
#include "ds-slot-book.h"

#include <string.h>

void
ds_slot_book_init (DsSlotBook *book, guint index)
{
  memset (book, 0, sizeof *book);
  book->index = index;
  book->phase = DS_SLOT_PHASE_IDLE;
  book->position_ns = -1;
  book->duration_ns = -1;
  book->first_mono_ns = -1;
  book->last_mono_ns = -1;
}

void
ds_slot_book_clear (DsSlotBook *book)
{
  ds_slot_output_clear (&book->out);
  g_free (book->end_error);
  ds_slot_book_init (book, book->index);
}

gboolean
ds_slot_book_busy (const DsSlotBook *book)
{
  return book->phase != DS_SLOT_PHASE_IDLE;
}

gboolean
ds_slot_book_active (const DsSlotBook *book)
{
  return book->phase == DS_SLOT_PHASE_STARTING || book->phase == DS_SLOT_PHASE_PLAYING;
}

static gboolean
refuse_if_busy (const DsSlotBook *book, GError **error)
{
  if (!ds_slot_book_busy (book))
    return FALSE;
  g_set_error (error, DS_SLOT_ERROR, DS_SLOT_ERROR_BUSY, "slot %u busy (file %"
      G_GINT64_FORMAT ")", book->index, book->file_id);
  return TRUE;
}

gboolean
ds_slot_book_begin (DsSlotBook *book, gint64 file_id, gboolean new_camera,
    const gchar *output_path, GError **error)
{
  if (refuse_if_busy (book, error) || !ds_slot_output_open (&book->out, output_path, error))
    return FALSE;
  if (new_camera)
    ds_slot_book_restart_camera (book);
  g_clear_pointer (&book->end_error, g_free);
  book->phase = DS_SLOT_PHASE_STARTING;
  book->has_file = TRUE;
  book->file_id = file_id;
  book->generation++;
  book->frames = 0;
  book->position_ns = -1;
  book->duration_ns = -1;
  book->first_mono_ns = -1;
  book->last_mono_ns = -1;
  return TRUE;
}

DsSlotFrame
ds_slot_book_frame (DsSlotBook *book, gint64 position_ns, gint64 mono_ns)
{
  DsSlotFrame res = DS_SLOT_FRAME_COUNTED;

  if (!ds_slot_book_active (book))
    return DS_SLOT_FRAME_IGNORED;
  if (book->phase == DS_SLOT_PHASE_STARTING) {
    book->phase = DS_SLOT_PHASE_PLAYING;
    book->first_mono_ns = mono_ns;
    res = DS_SLOT_FRAME_FIRST;
  }
  book->frames++;
  book->camera_frames++;
  book->position_ns = position_ns;
  book->last_mono_ns = mono_ns;
  return res;
}

gboolean
ds_slot_book_drain (DsSlotBook *book, const gchar *error)
{
  if (!ds_slot_book_active (book))
    return FALSE;
  /* An end without a single frame (e.g. a file without video) is not a result. */
  if (error == NULL && book->frames == 0)
    error = "no video frames decoded";
  book->phase = DS_SLOT_PHASE_DRAINING;
  book->generation++;
  g_free (book->end_error);
  book->end_error = g_strdup (error);
  return TRUE;
}

gboolean
ds_slot_book_finish (DsSlotBook *book, DsSlotDone *done)
{
  GError *write_error = NULL;

  memset (done, 0, sizeof *done);
  if (book->phase != DS_SLOT_PHASE_DRAINING)
    return FALSE;
  ds_slot_output_close (&book->out, &write_error);
  done->file_id = book->file_id;
  done->frames = book->frames;
  done->camera_frames = book->camera_frames;
  done->last_mono_ns = book->last_mono_ns;
  if (book->end_error != NULL)
    done->error = g_steal_pointer (&book->end_error);
  else if (write_error != NULL)
    done->error = g_strdup (write_error->message);
  g_clear_error (&write_error);
  book->phase = DS_SLOT_PHASE_IDLE;
  book->generation++;
  return TRUE;
}

void
ds_slot_done_clear (DsSlotDone *done)
{
  g_clear_pointer (&done->error, g_free);
}

void
ds_slot_done_emit (const DsSlotDone *done, DsShim *shim, guint index)
{
  if (done->error != NULL)
    ds_shim_emit_file_error (shim, (gint) index, done->file_id, done->error);
  else
    ds_shim_emit_file_done (shim, (gint) index, done->file_id, done->frames,
        done->camera_frames, done->last_mono_ns);
}

gboolean
ds_slot_book_end (DsSlotBook *book, const gchar *error, DsSlotDone *done)
{
  if (!ds_slot_book_drain (book, error)) {
    memset (done, 0, sizeof *done);
    return FALSE;
  }
  return ds_slot_book_finish (book, done);
}

void
ds_slot_book_stop (DsSlotBook *book, DsStopResult *out)
{
  memset (out, 0, sizeof *out);
  if (ds_slot_book_busy (book)) {
    out->was_playing = TRUE;
    out->file_id = book->file_id;
    out->frames = book->frames;
    ds_slot_output_close (&book->out, NULL);
    g_clear_pointer (&book->end_error, g_free);
    book->phase = DS_SLOT_PHASE_IDLE;
    book->generation++;
  }
  ds_slot_book_restart_camera (book);
}

gboolean
ds_slot_book_reset (DsSlotBook *book, GError **error)
{
  if (refuse_if_busy (book, error))
    return FALSE;
  ds_slot_book_restart_camera (book);
  return TRUE;
}

void
ds_slot_book_restart_camera (DsSlotBook *book)
{
  book->camera_frames = 0;
}

void
ds_slot_book_set_duration (DsSlotBook *book, gint64 duration_ns)
{
  if (ds_slot_book_busy (book) && duration_ns > 0)
    book->duration_ns = duration_ns;
}

void
ds_slot_book_progress (const DsSlotBook *book, DsSlotProgress *out)
{
  out->state = ds_slot_book_busy (book) ? DS_SLOT_PLAYING : DS_SLOT_IDLE;
  out->has_file = book->has_file;
  out->file_id = book->file_id;
  out->position_ns = book->position_ns;
  out->duration_ns = book->duration_ns;
  out->frames = book->frames;
  out->camera_frames = book->camera_frames;
}
