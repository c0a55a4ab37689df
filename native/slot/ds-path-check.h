/* DsPathCheck: input paths checked off the main loop.
 *
 * A local file is checked before GStreamer opens it, off the main loop: a FIFO would
 * block open() until a writer comes, and a file on a hung mount blocks stat() and open()
 * in the kernel for as long as the mount does not answer, whichever thread asks. Each slot
 * has one worker thread for its checks (created on the first one), so a check stuck in the
 * kernel holds one thread per slot at most; the answer comes back on the main loop within
 * a deadline, or says the path did not answer. */
#ifndef DS_PATH_CHECK_H
#define DS_PATH_CHECK_H

#include <glib.h>

#include "ds-slot-core.h"

G_BEGIN_DECLS

#define DS_PATH_CHECK_TIMEOUT_MS 5000

typedef struct _DsPathCheck DsPathCheck;

/* The check itself, run on the worker: NULL when GStreamer may open path, else the
 * reason (freed by the caller). */
typedef gchar *(*DsPathCheckFunc) (const gchar *path, gpointer data);

/* stat() and open(O_RDONLY | O_NONBLOCK) without blocking on a FIFO: `not a regular file:
 * <path>` for a FIFO, a directory, a device or a socket; NULL for a regular file, and for
 * a path stat() cannot read (a missing file: GStreamer says why). */
gchar *ds_path_check_local (const gchar *path, gpointer data);

/* Runs func (ds_path_check_local for the engines) on a worker and answers on context's
 * main loop (NULL: the global default), within timeout_ms. */
DsPathCheck *ds_path_check_new (GMainContext *context, guint timeout_ms,
    DsPathCheckFunc func, gpointer data);

/* Checks the local file of a `file:` uri; done (call) then runs on the main loop, always
 * later, with call->text NULL to go ahead, or the reason the file must fail:
 * `not a regular file: <path>`, or `path did not answer within <timeout> ms: <path>`
 * when the worker did not answer in time (it may still be stuck; a later check waits
 * for it within its own deadline). Any other uri is answered at once (text NULL). A new
 * check replaces an unanswered one, whose done is then never called. Main loop only. */
void ds_path_check_start (DsPathCheck *pc, const gchar *uri, DsSlotCallFunc done,
    const DsSlotCall *call);

/* Drops an unanswered check (its done is never called), then frees: joins an idle worker;
 * a worker stuck in the kernel is left to finish on its own and frees what it still uses.
 * Never blocks. Main loop only. */
void ds_path_check_free (DsPathCheck *pc);

G_END_DECLS

#endif /* DS_PATH_CHECK_H */
