/* DsLive: see ds-live.h. */
#include "ds-live.h"

#include <string.h>

void
ds_live_options_init (DsLiveOptions *opts)
{
  opts->rtp_protocols = 4;
  opts->latency_ms = 100;
  opts->retry_ms = 1000;
  opts->attempts = -1;
  opts->stall_ms = 5000;
}

gboolean
ds_live_uri_is_live (const gchar *uri)
{
  static const gchar *const schemes[] = { "rtsp", "rtsps", "http", "https", "udp" };
  gchar *scheme = uri != NULL ? g_uri_parse_scheme (uri) : NULL;
  gboolean live = FALSE;

  for (guint i = 0; scheme != NULL && i < G_N_ELEMENTS (schemes); i++)
    live |= g_ascii_strcasecmp (scheme, schemes[i]) == 0;
  g_free (scheme);
  return live;
}

void
ds_live_begin (DsLive *live, gint64 now_ns)
{
  memset (live, 0, sizeof *live);
  live->active = TRUE;
  live->phase = DS_LIVE_CONNECTING;
  live->attempt_mono_ns = now_ns;
  live->last_frame_mono_ns = -1;
  live->down_since_mono_ns = now_ns;
}

void
ds_live_end (DsLive *live)
{
  live->active = FALSE;
}

DsLiveFrame
ds_live_frame (DsLive *live, gint64 now_ns, DsLiveResume *resume)
{
  DsLiveFrame what = DS_LIVE_FRAME_COUNT;

  if (!live->active)
    return DS_LIVE_FRAME_COUNT;
  if (live->phase == DS_LIVE_WAITING)
    return DS_LIVE_FRAME_DROP;
  if (live->phase == DS_LIVE_RECONNECTING) {
    resume->down_ms = (now_ns - live->down_since_mono_ns) / G_GINT64_CONSTANT (1000000);
    resume->attempts = live->retries;
    resume->tracker_kept = live->last_frame_mono_ns >= 0
        && resume->down_ms < DS_LIVE_KEEP_TRACKER_MS;
    live->reconnects++;
    what = DS_LIVE_FRAME_RESUMED;
  }
  live->phase = DS_LIVE_PLAYING;
  live->retries = 0;
  live->last_frame_mono_ns = now_ns;
  live->ring[live->ring_next] = now_ns;
  live->ring_next = (live->ring_next + 1) % DS_LIVE_FRAME_RING;
  live->ring_len = MIN (live->ring_len + 1, DS_LIVE_FRAME_RING);
  return what;
}

void
ds_live_lost (DsLive *live, const DsLiveOptions *opts, gint64 now_ns, gboolean permanent,
    DsLiveLoss *loss)
{
  (void) now_ns;
  /* A loss while playing starts an outage; one while (re)connecting continues it. */
  if (live->phase == DS_LIVE_PLAYING)
    live->down_since_mono_ns = live->last_frame_mono_ns;
  if (permanent || opts->retry_ms <= 0 ||
      (opts->attempts >= 0 && live->retries >= (guint) opts->attempts)) {
    loss->will_retry = FALSE;
    loss->attempt = live->retries;
    loss->retry_in_ms = 0;
    live->active = FALSE;
    return;
  }
  {
    gint64 cap = MAX (DS_LIVE_MAX_RETRY_MS, (gint64) opts->retry_ms);
    gint64 delay = opts->retry_ms;

    for (guint i = 0; i < live->retries && delay < cap; i++)
      delay *= 2;
    loss->will_retry = TRUE;
    loss->attempt = live->retries + 1;
    loss->retry_in_ms = MIN (delay, cap);
  }
  live->phase = DS_LIVE_WAITING;
}

void
ds_live_retry (DsLive *live, gint64 now_ns)
{
  live->phase = DS_LIVE_RECONNECTING;
  live->retries++;
  live->attempt_mono_ns = now_ns;
}

gboolean
ds_live_stalled (const DsLive *live, const DsLiveOptions *opts, gint64 now_ns,
    gboolean *connecting)
{
  gint64 since;

  if (!live->active || live->phase == DS_LIVE_WAITING)
    return FALSE;
  *connecting = live->phase != DS_LIVE_PLAYING;
  since = *connecting ? live->attempt_mono_ns : live->last_frame_mono_ns;
  return now_ns - since > (gint64) opts->stall_ms * G_GINT64_CONSTANT (1000000);
}

void
ds_live_progress (const DsLive *live, gint64 now_ns, DsLiveProgress *out)
{
  static const gchar *const states[] = {
    [DS_LIVE_CONNECTING] = "connecting", [DS_LIVE_PLAYING] = "playing",
    [DS_LIVE_WAITING] = "reconnecting", [DS_LIVE_RECONNECTING] = "reconnecting",
  };
  gint64 window = DS_LIVE_FPS_WINDOW_NS;
  guint count = 0;

  out->active = live->active;
  out->state = states[live->phase];
  out->last_frame_age_ms = live->last_frame_mono_ns < 0 ? -1 :
      (now_ns - live->last_frame_mono_ns) / G_GINT64_CONSTANT (1000000);
  out->reconnects = live->reconnects;
  for (guint i = 0; i < live->ring_len; i++) {
    guint k = (live->ring_next + DS_LIVE_FRAME_RING - 1 - i) % DS_LIVE_FRAME_RING;
    if (now_ns - live->ring[k] > window)
      break;
    count++;
  }
  out->fps = (gdouble) count * 1e9 / (gdouble) window;
}

gchar *
ds_live_loss_text (const gchar *reason, gboolean refusal, const DsLiveLoss *loss)
{
  if (loss->will_retry)
    return NULL;
  if (refusal)
    return g_strdup_printf ("%s: not retried", reason);
  return g_strdup_printf ("stream lost: %s (gave up after %u attempts)", reason,
      loss->attempt);
}

gchar *
ds_live_refusal_text (const gchar *uri, gint status)
{
  gchar *scheme = g_uri_parse_scheme (uri);
  const gchar *proto = scheme != NULL && g_ascii_strncasecmp (scheme, "rtsp", 4) == 0 ?
      "rtsp" : "http";
  const gchar *what = status == 401 ? "unauthorized" : status == 403 ? "forbidden" :
      "not found";
  gchar *text = g_strdup_printf ("%s: %s (%d)", proto, what, status);

  g_free (scheme);
  return text;
}
