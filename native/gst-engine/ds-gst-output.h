/* The gst engine's per-file output (docs/engine-protocol.md): one line per decoded frame,
 *   <camera_frame> <file_frame> <pts_ns>
 * written as the frame is counted (GStreamer-free, unit-tested). */
#ifndef DS_GST_OUTPUT_H
#define DS_GST_OUTPUT_H

#include <glib.h>

#include "ds-slot-book.h"

G_BEGIN_DECLS

/* Writes the frame's line to the book's output, then counts it (ds_slot_book_frame).
 * pts_ns/position_ns: -1 when unknown. Nothing is written for a frame the book ignores. */
DsSlotFrame ds_gst_output_frame (DsSlotBook *book, gint64 pts_ns, gint64 position_ns,
    gint64 mono_ns);

G_END_DECLS

#endif /* DS_GST_OUTPUT_H */
