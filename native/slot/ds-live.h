/* DsLive: live sources (docs/engine-protocol.md, "Live sources").
 *
 * A live uri plays until stopped: a loss (EOS, error, stall) is answered by a re-play of
 * the same uri after a back-off, and the first frame after it ends the outage. DsLive is
 * the per-slot state of that; the caller serialises access and does the GStreamer part. */
#ifndef DS_LIVE_H
#define DS_LIVE_H

#include <glib.h>

#include "ds-shim.h"

G_BEGIN_DECLS

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

/* The file_error text of a loss that ends the file (!loss->will_retry), NULL when a re-play
 * follows: `<reason>: not retried` for a refusal, else `stream lost: <reason> (gave up
 * after <N> attempts)`. */
gchar *ds_live_loss_text (const gchar *reason, gboolean refusal, const DsLiveLoss *loss);

/* The error text of a refusal that is not retried: `<scheme>: unauthorized (401)`,
 * `forbidden (403)`, `not found (404)`; scheme is `rtsp` for rtsp(s)://, else `http`. */
gchar *ds_live_refusal_text (const gchar *uri, gint status);

G_END_DECLS

#endif /* DS_LIVE_H */
