/* The gst engine's per-file output: see ds-gst-output.h. */
#include "ds-gst-output.h"

DsSlotFrame
ds_gst_output_frame (DsSlotBook *book, gint64 pts_ns, gint64 position_ns, gint64 mono_ns)
{
  if (ds_slot_book_active (book))
    ds_slot_output_printf (&book->out, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %"
        G_GINT64_FORMAT "\n", book->camera_frames, book->frames,
        pts_ns < 0 ? (gint64) -1 : pts_ns);
  return ds_slot_book_frame (book, position_ns, mono_ns);
}
