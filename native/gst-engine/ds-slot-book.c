/* DsSlotBook: see ds-slot-book.h. */
#include "ds-slot-book.h"

#include <string.h>

void
ds_slot_book_init (DsSlotBook *book)
{
  memset (book, 0, sizeof *book);
  book->state = DS_SLOT_IDLE;
  book->position_ns = -1;
  book->duration_ns = -1;
  book->first_mono_ns = -1;
  book->last_mono_ns = -1;
}

void
ds_slot_book_clear (DsSlotBook *book)
{
  ds_slot_output_clear (&book->out);
  ds_slot_book_init (book);
}

gboolean
ds_slot_book_begin (DsSlotBook *book, gint64 file_id, gboolean new_camera,
    const gchar *output_path, GError **error)
{
  g_return_val_if_fail (book->state == DS_SLOT_IDLE, FALSE);
  if (!ds_slot_output_open (&book->out, output_path, error))
    return FALSE;
  if (new_camera)
    book->camera_frames = 0;
  book->state = DS_SLOT_PLAYING;
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

gboolean
ds_slot_book_frame (DsSlotBook *book, gint64 pts_ns, gint64 position_ns, gint64 mono_ns)
{
  gboolean first;

  if (book->state != DS_SLOT_PLAYING)
    return FALSE;
  first = book->frames == 0;
  ds_slot_output_printf (&book->out, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %"
      G_GINT64_FORMAT "\n", book->camera_frames, book->frames, pts_ns < 0 ? (gint64) -1 : pts_ns);
  book->frames++;
  book->camera_frames++;
  book->position_ns = position_ns;
  if (first)
    book->first_mono_ns = mono_ns;
  book->last_mono_ns = mono_ns;
  return first;
}

gboolean
ds_slot_book_end (DsSlotBook *book, gboolean reset_camera, GError **error)
{
  gboolean ok = ds_slot_output_close (&book->out, error);

  if (book->state == DS_SLOT_PLAYING)
    book->generation++;
  book->state = DS_SLOT_IDLE;
  if (reset_camera)
    book->camera_frames = 0;
  return ok;
}

void
ds_slot_book_reset_camera (DsSlotBook *book)
{
  g_return_if_fail (book->state == DS_SLOT_IDLE);
  book->camera_frames = 0;
}

void
ds_slot_book_progress (const DsSlotBook *book, DsSlotProgress *out)
{
  out->state = book->state;
  out->has_file = book->has_file;
  out->file_id = book->file_id;
  out->position_ns = book->position_ns;
  out->duration_ns = book->duration_ns;
  out->frames = book->frames;
  out->camera_frames = book->camera_frames;
}
