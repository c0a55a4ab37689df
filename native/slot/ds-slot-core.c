/* ds-slot-core: see ds-slot-core.h. */
#include "ds-slot-core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (ds-slot-error-quark, ds_slot_error)

void
ds_slot_set_busy (GError **error, guint index, gint64 file_id)
{
  g_set_error (error, DS_SLOT_ERROR, DS_SLOT_ERROR_BUSY, "slot %u busy (file %"
      G_GINT64_FORMAT ")", index, file_id);
}

/* ---------- per-file output ---------- */

void
ds_slot_output_init (DsSlotOutput *out)
{
  memset (out, 0, sizeof (*out));
}

void
ds_slot_output_clear (DsSlotOutput *out)
{
  ds_slot_output_close (out, NULL);
  g_free (out->path);
  ds_slot_output_init (out);
}

static FILE *
open_regular (const gchar *path, GError **error)
{
  const gchar *reason = NULL;
  struct stat st;
  FILE *f;
  int fd, flags, e = 0;

  /* O_NONBLOCK: a FIFO would block the main loop in open() until a reader comes (without
   * a reader it fails with ENXIO). No O_TRUNC until the file is known to be regular. */
  fd = open (path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0666);
  if (fd < 0) {
    e = errno;
    if (e == ENXIO || e == EISDIR)
      reason = "not a regular file";
  } else if (fstat (fd, &st) != 0) {
    e = errno;
  } else if (!S_ISREG (st.st_mode)) {
    e = EINVAL;
    reason = "not a regular file";
  } else if (ftruncate (fd, 0) != 0 || (flags = fcntl (fd, F_GETFL)) < 0 ||
      fcntl (fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    e = errno;
  } else if ((f = fdopen (fd, "w")) != NULL) {
    return f;
  } else {
    e = errno;
  }
  if (fd >= 0)
    close (fd);
  g_set_error (error, DS_SLOT_ERROR, DS_SLOT_ERROR_OUTPUT, "cannot open output %s: %s",
      path, reason != NULL ? reason : g_strerror (e));
  return NULL;
}

gboolean
ds_slot_output_open (DsSlotOutput *out, const gchar *path, GError **error)
{
  FILE *f;

  if (path == NULL || path[0] == '\0') {
    ds_slot_output_clear (out);
    return TRUE;
  }
  f = open_regular (path, error);
  if (f == NULL)
    return FALSE;
  ds_slot_output_clear (out);
  out->file = f;
  out->path = g_strdup (path);
  return TRUE;
}

gboolean
ds_slot_output_writable (const DsSlotOutput *out)
{
  return out->file != NULL && out->errsv == 0;
}

static void
keep_errno (DsSlotOutput *out)
{
  if (out->errsv == 0)
    out->errsv = errno != 0 ? errno : EIO;
}

gboolean
ds_slot_output_write (DsSlotOutput *out, const gchar *data, gsize len)
{
  if (!ds_slot_output_writable (out))
    return FALSE;
  errno = 0;
  if (fwrite (data, 1, len, out->file) != len)
    keep_errno (out);
  return out->errsv == 0;
}

gboolean
ds_slot_output_printf (DsSlotOutput *out, const gchar *format, ...)
{
  va_list args;
  int n;

  if (!ds_slot_output_writable (out))
    return FALSE;
  errno = 0;
  va_start (args, format);
  n = vfprintf (out->file, format, args);
  va_end (args);
  if (n < 0)
    keep_errno (out);
  return out->errsv == 0;
}

gboolean
ds_slot_output_close (DsSlotOutput *out, GError **error)
{
  if (out->file == NULL)
    return TRUE;
  /* fclose flushes: a buffered write that fails shows up here first. */
  errno = 0;
  if (fclose (out->file) != 0)
    keep_errno (out);
  out->file = NULL;
  if (out->errsv == 0)
    return TRUE;
  g_set_error (error, DS_SLOT_ERROR, DS_SLOT_ERROR_OUTPUT, "cannot write output %s: %s",
      out->path, g_strerror (out->errsv));
  return FALSE;
}

/* ---------- streaming thread → main loop ---------- */

typedef struct {
  DsSlotCall call;
  DsSlotCallFunc func;
  gchar *text;  /* call.text points here */
} QueuedCall;

static gboolean
run_call (gpointer data)
{
  QueuedCall *q = data;

  q->func (&q->call);
  return G_SOURCE_REMOVE;
}

static void
free_call (gpointer data)
{
  QueuedCall *q = data;

  g_free (q->text);
  g_free (q);
}

void
ds_slot_call_queue (GMainContext *context, DsSlotCallFunc func, const DsSlotCall *call)
{
  QueuedCall *q = g_new (QueuedCall, 1);
  GSource *src = g_idle_source_new ();

  q->call = *call;
  q->text = g_strdup (call->text);
  q->call.text = q->text;
  q->func = func;
  g_source_set_priority (src, G_PRIORITY_DEFAULT);
  g_source_set_callback (src, run_call, q, free_call);
  g_source_attach (src, context);
  g_source_unref (src);
}

gboolean
ds_slot_call_is_current (const DsSlotCall *call, guint64 generation, guint state,
    guint states)
{
  return call->generation == generation && state < 32
      && (states & DS_SLOT_STATES (state)) != 0;
}

/* ---------- input paths ---------- */

struct _DsPathCheck {
  gint refs;              /* atomic: the owner, the worker, each deadline */
  GMainContext *context;
  guint timeout_ms;
  DsPathCheckFunc func;
  gpointer data;
  GMutex lock;            /* guards the rest */
  GCond cond;
  GThread *thread;        /* the worker; NULL until the first local file */
  gboolean quit;
  gboolean busy;          /* the worker is in func (perhaps stuck in the kernel) */
  guint64 serial;         /* of the latest check */
  gboolean answered;      /* the latest check was answered or cancelled */
  gchar *path;            /* the latest check's path, until the worker takes it */
  gchar *label;           /* the latest check's path, for the deadline's text */
  DsSlotCallFunc done;
  DsSlotCall call;        /* the latest check's answer (text unused) */
  GSource *deadline;
};

typedef struct {
  DsPathCheck *pc;
  guint64 serial;
} Deadline;

static DsPathCheck *
path_check_ref (DsPathCheck *pc)
{
  g_atomic_int_inc (&pc->refs);
  return pc;
}

static void
path_check_unref (DsPathCheck *pc)
{
  if (!g_atomic_int_dec_and_test (&pc->refs))
    return;
  g_free (pc->path);
  g_free (pc->label);
  g_mutex_clear (&pc->lock);
  g_cond_clear (&pc->cond);
  if (pc->context != NULL)
    g_main_context_unref (pc->context);
  g_free (pc);
}

gchar *
ds_path_check_local (const gchar *path, gpointer data)
{
  struct stat st;
  int fd;

  (void) data;
  if (stat (path, &st) != 0)
    return NULL;
  if (!S_ISREG (st.st_mode))
    return g_strdup_printf ("not a regular file: %s", path);
  /* A mount may answer stat() from its cache and still hang in open(). */
  fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd >= 0)
    close (fd);
  return NULL;
}

DsPathCheck *
ds_path_check_new_full (GMainContext *context, guint timeout_ms, DsPathCheckFunc func,
    gpointer data)
{
  DsPathCheck *pc = g_new0 (DsPathCheck, 1);

  pc->refs = 1;
  pc->context = context != NULL ? g_main_context_ref (context) : NULL;
  pc->timeout_ms = timeout_ms;
  pc->func = func;
  pc->data = data;
  pc->answered = TRUE;
  g_mutex_init (&pc->lock);
  g_cond_init (&pc->cond);
  return pc;
}

DsPathCheck *
ds_path_check_new (GMainContext *context, guint timeout_ms)
{
  return ds_path_check_new_full (context, timeout_ms, ds_path_check_local, NULL);
}

/* The latest check is answered (text) or dropped (done NULL); pc->lock held. */
static void
answer_locked (DsPathCheck *pc, const gchar *text, gboolean send)
{
  DsSlotCall c = pc->call;

  pc->answered = TRUE;
  g_clear_pointer (&pc->path, g_free);
  if (pc->deadline != NULL) {
    g_source_destroy (pc->deadline);
    g_clear_pointer (&pc->deadline, g_source_unref);
  }
  if (send) {
    c.text = text;
    ds_slot_call_queue (pc->context, pc->done, &c);
  }
}

static gpointer
path_check_worker (gpointer data)
{
  DsPathCheck *pc = data;

  g_mutex_lock (&pc->lock);
  for (;;) {
    gchar *path, *reason;
    guint64 serial;

    while (!pc->quit && pc->path == NULL)
      g_cond_wait (&pc->cond, &pc->lock);
    if (pc->quit)
      break;
    path = g_steal_pointer (&pc->path);
    serial = pc->serial;
    pc->busy = TRUE;
    g_mutex_unlock (&pc->lock);
    reason = pc->func (path, pc->data);
    g_mutex_lock (&pc->lock);
    pc->busy = FALSE;
    if (serial == pc->serial && !pc->answered)
      answer_locked (pc, reason, TRUE);
    g_free (path);
    g_free (reason);
  }
  g_mutex_unlock (&pc->lock);
  path_check_unref (pc);
  return NULL;
}

static gboolean
on_path_deadline (gpointer data)
{
  Deadline *d = data;
  DsPathCheck *pc = d->pc;

  g_mutex_lock (&pc->lock);
  if (d->serial == pc->serial && !pc->answered) {
    gchar *text = g_strdup_printf ("path did not answer within %u ms: %s", pc->timeout_ms,
        pc->label);
    answer_locked (pc, text, TRUE);
    g_free (text);
  }
  g_mutex_unlock (&pc->lock);
  return G_SOURCE_REMOVE;
}

static void
free_deadline (gpointer data)
{
  Deadline *d = data;

  path_check_unref (d->pc);
  g_free (d);
}

void
ds_path_check_start (DsPathCheck *pc, const gchar *uri, DsSlotCallFunc done,
    const DsSlotCall *call)
{
  gchar *path = uri != NULL ? g_filename_from_uri (uri, NULL, NULL) : NULL;
  Deadline *d;

  g_mutex_lock (&pc->lock);
  answer_locked (pc, NULL, FALSE);
  pc->serial++;
  pc->done = done;
  pc->call = *call;
  pc->call.text = NULL;
  if (path == NULL) {
    answer_locked (pc, NULL, TRUE); /* not a local file: nothing to check */
    g_mutex_unlock (&pc->lock);
    return;
  }
  pc->answered = FALSE;
  pc->path = path;
  g_free (pc->label);
  pc->label = g_strdup (path);
  if (pc->thread == NULL)
    pc->thread = g_thread_new ("ds-path-check", path_check_worker, path_check_ref (pc));
  g_cond_signal (&pc->cond);
  d = g_new (Deadline, 1);
  d->pc = path_check_ref (pc);
  d->serial = pc->serial;
  pc->deadline = g_timeout_source_new (pc->timeout_ms);
  g_source_set_callback (pc->deadline, on_path_deadline, d, free_deadline);
  g_source_attach (pc->deadline, pc->context);
  g_mutex_unlock (&pc->lock);
}

void
ds_path_check_cancel (DsPathCheck *pc)
{
  g_mutex_lock (&pc->lock);
  answer_locked (pc, NULL, FALSE);
  g_mutex_unlock (&pc->lock);
}

void
ds_path_check_free (DsPathCheck *pc)
{
  GThread *thread;
  gboolean stuck;

  if (pc == NULL)
    return;
  g_mutex_lock (&pc->lock);
  answer_locked (pc, NULL, FALSE);
  pc->quit = TRUE;
  g_cond_signal (&pc->cond);
  thread = g_steal_pointer (&pc->thread);
  stuck = pc->busy;
  g_mutex_unlock (&pc->lock);
  if (thread != NULL) {
    if (stuck)
      g_thread_unref (thread); /* it ends when the kernel lets go */
    else
      g_thread_join (thread);
  }
  path_check_unref (pc);
}

/* ---------- live sources ---------- */

void
ds_live_options_init (DsLiveOptions *opts)
{
  opts->rtp_protocols = 4;
  opts->latency_ms = 100;
  opts->retry_ms = 1000;
  opts->attempts = -1;
  opts->stall_ms = 5000;
}

/* An integer key within min..max; absent → def. */
static gboolean
key_int (GKeyFile *kf, const gchar *group, const gchar *key, gint def, gint min, gint max,
    gint *out, GError **error)
{
  GError *err = NULL;

  *out = def;
  if (!g_key_file_has_key (kf, group, key, NULL))
    return TRUE;
  *out = g_key_file_get_integer (kf, group, key, &err);
  if (err != NULL) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
        "[%s] %s: %s", group, key, err->message);
    g_error_free (err);
    return FALSE;
  }
  if (*out < min || *out > max) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
        "[%s] %s: %d out of range (%d..%d)", group, key, *out, min, max);
    return FALSE;
  }
  return TRUE;
}

gboolean
ds_live_options_parse (GKeyFile *kf, const gchar *group, DsLiveOptions *opts,
    GError **error)
{
  DsLiveOptions def;
  gint interval, stall;

  ds_live_options_init (&def);
  if (!key_int (kf, group, "select-rtp-protocol", def.rtp_protocols, 0, 4,
          &opts->rtp_protocols, error) ||
      !key_int (kf, group, "latency", def.latency_ms, 0, 60000, &opts->latency_ms, error) ||
      !key_int (kf, group, "rtsp-reconnect-interval-sec", def.retry_ms / 1000, 0, 3600,
          &interval, error) ||
      !key_int (kf, group, "rtsp-reconnect-attempts", def.attempts, -1, 1000000,
          &opts->attempts, error) ||
      !key_int (kf, group, "live-stall-sec", def.stall_ms / 1000, 1, 3600, &stall, error))
    return FALSE;
  if (opts->rtp_protocols != 0 && opts->rtp_protocols != 4) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
        "[%s] select-rtp-protocol: %d is neither 0 (UDP+TCP) nor 4 (TCP)", group,
        opts->rtp_protocols);
    return FALSE;
  }
  opts->retry_ms = interval * 1000;
  opts->stall_ms = stall * 1000;
  return TRUE;
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
