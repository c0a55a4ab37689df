/* ds-slot-core: what every engine's slots share, free of GStreamer.
 *
 *  - DS_SLOT_ERROR: the one error domain of slot refusals and failures;
 *  - DsSlotOutput: the per-file output (docs/engine-protocol.md): created without
 *    blocking, written line by line, the first write error kept, reported at close;
 *  - DsSlotCall: work a streaming thread hands to the main loop, tagged with the slot's
 *    generation (which changes whenever a file begins or ends) so that work for an earlier
 *    file can be dropped there.
 *
 * The GStreamer side (bus errors, which slot an element belongs to) is ds-slot-gst.h. */
#ifndef DS_SLOT_CORE_H
#define DS_SLOT_CORE_H

#include <stdio.h>

#include <glib.h>

#include "ds-shim.h"

G_BEGIN_DECLS

/* Index of no slot (engine-wide work, an element outside every slot). */
#define DS_SLOT_NONE G_MAXUINT

#define DS_SLOT_ERROR (ds_slot_error_quark ())
GQuark ds_slot_error_quark (void);

typedef enum {
  DS_SLOT_ERROR_BUSY,     /* `slot 0 busy (file 12)` */
  DS_SLOT_ERROR_OUTPUT,   /* `cannot open output …` / `cannot write output …` */
  DS_SLOT_ERROR_PIPELINE, /* the engine cannot build or start its pipeline */
} DsSlotError;

/* Refuses a request on a slot that is playing (or draining) file_id. */
void ds_slot_set_busy (GError **error, guint index, gint64 file_id);

/* ---------- per-file output ---------- */

typedef struct {
  FILE *file;   /* NULL = closed or none */
  gchar *path;  /* of the last file opened, kept after close for messages */
  gint errsv;   /* first write error (errno), 0 = none */
} DsSlotOutput;

/* Zero-initialised memory is a closed output too. */
void ds_slot_output_init (DsSlotOutput *out);
/* Closes without a report and frees the path. */
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

/* ---------- streaming thread → main loop ---------- */

typedef struct _DsSlotCall DsSlotCall;
typedef void (*DsSlotCallFunc) (const DsSlotCall *call);

struct _DsSlotCall {
  gpointer owner;      /* the engine */
  gpointer slot;       /* the engine's slot; NULL for engine-wide work */
  guint index;         /* the slot number, DS_SLOT_NONE for engine-wide work */
  guint64 generation;  /* the slot's generation when queued (read under its lock) */
  gint kind;           /* engine-defined */
  gint64 mono_ns;
  const gchar *text;   /* NULL = none; ds_slot_call_queue copies it */
};

/* Runs func (call) on context's main loop (NULL: the global default), always later, never
 * inline even on the main thread: a state change made by a request may post an error at
 * once, and the request's reply must go out first. `call` is copied (text too); the copy
 * is freed after func returns. Safe from any thread. */
void ds_slot_call_queue (GMainContext *context, DsSlotCallFunc func, const DsSlotCall *call);

/* A set of slot states (an engine's state or phase enum) for ds_slot_call_is_current. */
#define DS_SLOT_STATES(s) (1u << (s))

/* TRUE when the call is still about the slot's current file: generation and state are the
 * slot's now (read under its lock) and state is one of `states`. */
gboolean ds_slot_call_is_current (const DsSlotCall *call, guint64 generation, guint state,
    guint states);

/* ---------- input paths ----------
 *
 * A local file is checked before GStreamer opens it, off the main loop: a FIFO would
 * block open() until a writer comes, and a file on a hung mount blocks stat() and open()
 * in the kernel for as long as the mount does not answer, whichever thread asks. Each slot
 * has one worker thread for its checks (created on the first one), so a check stuck in the
 * kernel holds one thread per slot at most; the answer comes back on the main loop within
 * a deadline, or says the path did not answer. */

#define DS_PATH_CHECK_TIMEOUT_MS 5000

typedef struct _DsPathCheck DsPathCheck;

/* The check itself, run on the worker: NULL when GStreamer may open path, else the
 * reason (freed by the caller). ds_path_check_new uses ds_path_check_local. */
typedef gchar *(*DsPathCheckFunc) (const gchar *path, gpointer data);

/* stat() and open(O_RDONLY | O_NONBLOCK) without blocking on a FIFO: `not a regular file:
 * <path>` for a FIFO, a directory, a device or a socket; NULL for a regular file, and for
 * a path stat() cannot read (a missing file: GStreamer says why). */
gchar *ds_path_check_local (const gchar *path, gpointer data);

/* Answers on context's main loop (NULL: the global default), within timeout_ms. */
DsPathCheck *ds_path_check_new (GMainContext *context, guint timeout_ms);
/* The same with another check function (tests). */
DsPathCheck *ds_path_check_new_full (GMainContext *context, guint timeout_ms,
    DsPathCheckFunc func, gpointer data);

/* Checks the local file of a `file:` uri; done (call) then runs on the main loop, always
 * later, with call->text NULL to go ahead, or the reason the file must fail:
 * `not a regular file: <path>`, or `path did not answer within <timeout> ms: <path>`
 * when the worker did not answer in time (it may still be stuck; a later check waits
 * for it within its own deadline). Any other uri is answered at once (text NULL). A new
 * check replaces an unanswered one, whose done is then never called; so does
 * ds_path_check_cancel. Main loop only. */
void ds_path_check_start (DsPathCheck *pc, const gchar *uri, DsSlotCallFunc done,
    const DsSlotCall *call);
void ds_path_check_cancel (DsPathCheck *pc);

/* Cancels, then frees: joins an idle worker; a worker stuck in the kernel is left to
 * finish on its own and frees what it still uses. Never blocks. Main loop only. */
void ds_path_check_free (DsPathCheck *pc);

/* ---------- live sources (docs/engine-protocol.md, "Live sources") ----------
 *
 * A live uri plays until stopped: a loss (EOS, error, stall) is answered by a re-play of
 * the same uri after a back-off, and the first frame after it ends the outage. DsLive is
 * the per-slot state of that; the caller serialises access and does the GStreamer part. */

#define DS_LIVE_MAX_RETRY_MS 30000     /* the back-off doubles up to this */
#define DS_LIVE_KEEP_TRACKER_MS 10000  /* a shorter outage keeps the camera state */
#define DS_LIVE_FPS_WINDOW_NS (2 * G_GINT64_CONSTANT (1000000000))
#define DS_LIVE_FRAME_RING 512         /* frame times kept for fps: 256 fps over the window */

/* Per-slot options from deepstream-app's [sourceK] keys. */
typedef struct {
  gint rtp_protocols; /* select-rtp-protocol: 0 = UDP, UDP multicast and TCP; 4 = TCP only */
  gint latency_ms;    /* latency: rtspsrc's jitter buffer */
  gint retry_ms;      /* rtsp-reconnect-interval-sec: the first retry's delay; 0 = no retry */
  gint attempts;      /* rtsp-reconnect-attempts: retries per outage, -1 = forever */
  gint stall_ms;      /* live-stall-sec: no frame for this long is a loss */
} DsLiveOptions;

/* The defaults: TCP, 100 ms, 1 s, forever, 5 s. */
void ds_live_options_init (DsLiveOptions *opts);

/* The options of one [sourceK] group: select-rtp-protocol 0 or 4, latency 0..60000,
 * rtsp-reconnect-interval-sec 0..3600, rtsp-reconnect-attempts -1..1000000,
 * live-stall-sec 1..3600; an absent key is the default. FALSE with `[group] key: why`. */
gboolean ds_live_options_parse (GKeyFile *kf, const gchar *group, DsLiveOptions *opts,
    GError **error);

/* TRUE for rtsp://, rtsps://, http://, https://, udp:// (case-insensitive scheme). */
gboolean ds_live_uri_is_live (const gchar *uri);

typedef enum {
  DS_LIVE_CONNECTING,   /* first connection, no frame yet */
  DS_LIVE_PLAYING,
  DS_LIVE_WAITING,      /* lost; the retry timer runs, the source is down */
  DS_LIVE_RECONNECTING, /* a retry is under way, no frame yet */
} DsLivePhase;

typedef struct {
  gboolean active;
  DsLivePhase phase;
  gint64 attempt_mono_ns;    /* when the current connection attempt began */
  gint64 last_frame_mono_ns; /* -1 = none since play */
  gint64 down_since_mono_ns; /* the outage's start: last frame before it, or the play */
  guint retries;             /* retries made in the current outage */
  guint64 reconnects;
  gint64 ring[DS_LIVE_FRAME_RING];
  guint ring_next, ring_len;
} DsLive;

typedef struct {
  gint64 down_ms;       /* from the last frame before the outage (or the play) */
  guint attempts;       /* retries it took */
  gboolean tracker_kept;
} DsLiveResume;

typedef struct {
  gboolean will_retry;
  guint attempt;        /* will_retry: the retry that comes next (1-based); else those made */
  gint64 retry_in_ms;
} DsLiveLoss;

typedef enum {
  DS_LIVE_FRAME_DROP,   /* the source is being taken down: not the stream's any more */
  DS_LIVE_FRAME_COUNT,
  DS_LIVE_FRAME_RESUMED,/* the first frame after an outage: `resume` is filled */
} DsLiveFrame;

/* Play: a live source starts connecting. */
void ds_live_begin (DsLive *live, gint64 now_ns);
/* Stop, end, give up: inactive (counters kept for nothing). */
void ds_live_end (DsLive *live);
/* A frame of an active live slot. With DS_LIVE_FRAME_RESUMED and !resume->tracker_kept
 * the caller resets the slot's camera state before counting the frame. */
DsLiveFrame ds_live_frame (DsLive *live, gint64 now_ns, DsLiveResume *resume);
/* The stream failed (permanent: a refusal that will not heal). Decides whether to retry;
 * with will_retry the slot waits for ds_live_retry after retry_in_ms, else it is over. */
void ds_live_lost (DsLive *live, const DsLiveOptions *opts, gint64 now_ns, gboolean permanent,
    DsLiveLoss *loss);
/* The retry timer fired: the re-play begins. */
void ds_live_retry (DsLive *live, gint64 now_ns);
/* No frame for opts->stall_ms while connecting or playing (not while waiting). Sets
 * *connecting when no frame came since the current attempt began. */
gboolean ds_live_stalled (const DsLive *live, const DsLiveOptions *opts, gint64 now_ns,
    gboolean *connecting);
void ds_live_progress (const DsLive *live, gint64 now_ns, DsLiveProgress *out);

/* The error text of a refusal that is not retried: `<scheme>: unauthorized (401)`,
 * `forbidden (403)`, `not found (404)`; scheme is `rtsp` for rtsp(s)://, else `http`. */
gchar *ds_live_refusal_text (const gchar *uri, gint status);

G_END_DECLS

#endif /* DS_SLOT_CORE_H */
