/* DsSlotOutput: the per-file output of a slot (docs/engine-protocol.md): created without
 * blocking, written line by line, the first write error kept and reported at close. */
#ifndef DS_SLOT_OUTPUT_H
#define DS_SLOT_OUTPUT_H

#include <stdio.h>

#include <glib.h>

#include "ds-slot-core.h"

G_BEGIN_DECLS

typedef struct {
  FILE *file;   /* NULL = closed or none */
  gchar *path;  /* of the last file opened, kept after close for messages */
  gint errsv;   /* first write error (errno), 0 = none */
} DsSlotOutput; /* zero-initialised: a closed output */

/* Closes without a report and frees the path: a closed output again. */
void ds_slot_output_clear (DsSlotOutput *out);

/* Creates (truncates) path for writing, without blocking: anything but a regular file
 * (a FIFO, a device, a socket, a directory) is refused. path NULL or "" means no output
 * (TRUE, nothing opened). On success the previous file is cleared first (closed without a
 * report); on failure `out` is unchanged and error reads
 * `cannot open output <path>: <reason>` (`not a regular file` for those refused). */
gboolean ds_slot_output_open (DsSlotOutput *out, const gchar *path, GError **error);

/* TRUE when open and no write has failed yet: worth formatting a line for. */
gboolean ds_slot_output_writable (const DsSlotOutput *out);

/* Appends len bytes; after the first failure (kept in errsv) nothing more is written.
 * Returns ds_slot_output_writable(). */
gboolean ds_slot_output_write (DsSlotOutput *out, const gchar *data, gsize len);
gboolean ds_slot_output_printf (DsSlotOutput *out, const gchar *format, ...)
    G_GNUC_PRINTF (2, 3);

/* Flushes and closes. FALSE, with error `cannot write output <path>: <reason>`, when any
 * of the file failed to be written: the caller turns a clean end into a failure. A closed
 * or absent output is TRUE. */
gboolean ds_slot_output_close (DsSlotOutput *out, GError **error);

G_END_DECLS

#endif /* DS_SLOT_OUTPUT_H */
