/* The deepstream-app adapter: DsEngineVTable on the URI slots of NvDsSrcParentBin.
 *
 * One pipeline for the life of the process. Each slot (sub_bins[i]: uridecodebin → … →
 * ghost pad `src` → nvstreammux sink_i) is stopped and locked once the pipeline is
 * PLAYING; play sets the uri and syncs it with the pipeline again. A file's EOS goes on
 * into the muxer, so an idle slot leaves the legacy muxer's batch instead of holding
 * every batch for batched-push-timeout. A muxer pad at EOS is reused only after a
 * flush, as NVIDIA's own code always does (what the closed legacy muxer does otherwise
 * is unknown): FLUSH_START + FLUSH_STOP(reset) go into it when the next file's
 * stream-start reaches it, the previous file long drained, so the pad is back in the
 * batch only once its data is about to come. Unless the muxer turns out to pass a
 * pad's flush downstream (seen at the takeover, which flushes every pad): then a flush
 * would drop every slot's frames in flight, and the stream-start alone must do. Frames are counted at the slot output (source side) and again after the
 * tracker (sink side), where each frame's objects go to the per-file output; only when
 * every frame of a file has left the tracker does its slot go back to NULL (the muxer
 * may hold the decoder's surfaces until then). Every decision that needs no DeepStream
 * lives in ds-track.c.
 *
 * Threads: probes run on streaming threads and only touch the slots' books (DsTrackSlot)
 * under `lock`, then hand work to the main loop. A slot is taken down (to NULL) on a worker
 * thread: a decoder may wait there for surfaces still held downstream, and the main loop
 * must not wait with it; the slot restarts on the main loop once it is down. Other state
 * changes happen on the main loop, never with `lock` held (a state change joins
 * streaming threads that may wait for it).
 *
 * A live uri (docs/engine-protocol.md, "Live sources") plays until stopped: its EOS,
 * error or stall is a loss; the source is pre-empted and the same uri re-played from a
 * main-loop timer (DsLive of ds-live.h), the book staying on the same file.
 * deepstream-app's own RTSP reconnect is not used: the slots are plain URI sources. */
#include "ds-app-hooks.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>

#include "gst-nvevent.h"
#include "gstnvdsmeta.h"
#include "nvds_version.h"

#include "ds-live.h"
#include "ds-path-check.h"
#include "ds-shim.h"
#include "ds-slot-config.h"
#include "ds-slot-core.h"
#include "ds-slot-gst.h"
#include "ds-track.h"

GST_DEBUG_CATEGORY_STATIC (ds_adapter_debug);
#define GST_CAT_DEFAULT ds_adapter_debug

#define ADAPTER_VERSION G_STRINGIFY (NVDS_VERSION_MAJOR) "." \
    G_STRINGIFY (NVDS_VERSION_MINOR) "." G_STRINGIFY (NVDS_VERSION_MICRO)

#define START_DEADLINE_NS (10 * GST_SECOND)       /* uri → PLAYING */
#define EOS_DRAIN_TIMEOUT_NS (5 * GST_SECOND)     /* EOS → last frame after the tracker */
#define ERROR_DRAIN_TIMEOUT_NS (500 * GST_MSECOND)
#define RESET_TIMEOUT_NS (2 * GST_SECOND)         /* stream reset → after the tracker */
#define WATCH_INTERVAL_MS 20
#define TICK_INTERVAL_MS 100
#define READY_KICK_S 5

typedef struct _DsAdapter DsAdapter;

typedef struct {
  DsAdapter *ad;
  guint index;
  NvDsSrcBin *src;
  GstPad *ghost;          /* the slot's output, in front of the muxer */
  gulong ghost_probe;
  GstPad *guard;          /* the output feeding the flush target (flush_slot) */
  gulong guard_probe;
  GstPad *mux_pad;        /* nvstreammux sink_<index> */
  guint watch_id;         /* start watchdog */
  guint64 watch_generation;
  gint64 watch_start_ns;
  /* main loop only */
  gboolean source_up;     /* set to play a file, not yet handed to the stopper */
  gboolean source_busy;   /* the stopper is taking it down */
  gboolean start_pending; /* a play waits for the stopper */
  guint64 pending_generation;
  gchar *pending_uri;
  gchar *uri;             /* of the current file, for re-plays of a live source */
  guint retry_id;         /* a live source's pending re-play */
  DsPathCheck *path_check; /* the file's path, checked off the main loop before play */
  DsLiveOptions opts;
  /* guarded by ad->lock */
  gboolean closing;       /* pre-empted source going down: its frames are dropped */
  gboolean mux_eos;       /* an EOS went into the muxer pad since its last flush */
  DsLive live;
  DsLiveResume resume;    /* of the last outage, for its event */
  DsTrackSlot track;      /* the slot's file, its frames and outputs (ds-track.h) */
  gchar *source_error;    /* first bus error of the current file */
  gboolean reset_pending; /* a stream reset goes in before the next file's first frame */
} DsAdapterSlot;

struct _DsAdapter {
  AppCtx *app;
  GMutex lock;
  DsShim *shim;
  DsAdapterSlot *slots;
  guint n_slots;
  GstElement *pipeline;
  GstBus *bus;
  GstPad *sink_pad;       /* after the tracker (or the last analytics stage) */
  GstPad *mux_src;        /* the muxer's output: where a flush can no longer drop a reset */
  gulong mux_src_probe;
  GThreadPool *stopper;   /* takes slots down to NULL off the main loop */
  gulong sink_probe;
  guint tick_id;
  guint sigterm_id;
  guint ready_kick_id;
  gint ready_scheduled;   /* atomic */
  gint ready;             /* atomic: slots taken over, `ready` sent */
  gint detached;          /* atomic */
  gint stdin_keep_fd;
  gint flush_forwarded;    /* atomic: the muxer passed a per-pad flush downstream */
  /* guarded by lock */
  gchar *fatal;
  gboolean fatal_sent;
};

/* One adapter per process, in static storage: after detach a streaming thread may still
 * be finishing a probe, and work queued for the main loop may still point here, so the
 * memory (books, lock, slots) stays valid until the process exits. */
static DsAdapter adapter_storage;
static DsAdapter *adapter;

static gint64
now_ns (void)
{
  return g_get_monotonic_time () * 1000;
}

/* ---------- main-loop calls from streaming threads ---------- */

static void
schedule (DsAdapter *ad, DsAdapterSlot *s, guint64 generation, gint64 mono_ns,
    const gchar *text, DsSlotCallFunc fn)
{
  DsSlotCall c = {
    .owner = ad, .slot = s, .index = s != NULL ? s->index : DS_SLOT_NONE,
    .generation = generation, .mono_ns = mono_ns, .text = text,
  };

  ds_slot_call_queue (NULL, fn, &c);
}

/* TRUE when the call is still about the slot's current file in one of `phases`. */
static gboolean
call_is_current (const DsSlotCall *c, guint phases)
{
  DsAdapter *ad = c->owner;
  DsAdapterSlot *s = c->slot;
  gboolean ok;

  if (g_atomic_int_get (&ad->detached))
    return FALSE;
  g_mutex_lock (&ad->lock);
  ok = ds_slot_call_is_current (c, s->track.book.generation, s->track.book.phase, phases);
  g_mutex_unlock (&ad->lock);
  return ok;
}

/* ---------- slot control (main loop) ---------- */

static void
watch_stop (DsAdapterSlot *s)
{
  if (s->watch_id != 0) {
    g_source_remove (s->watch_id);
    s->watch_id = 0;
  }
}

static void start_source (DsAdapterSlot *s, const gchar *uri, guint64 generation);

/* Takes a slot's source down and keeps pipeline state changes away from it; then its
 * muxer pad gets EOS (unless the file's own EOS is there already), which takes it out
 * of the legacy muxer's batch (a pad that is merely idle would hold every batch for
 * batched-push-timeout). Runs on the stopper thread, or on the main loop at takeover
 * and detach. */
static void
source_down (DsAdapterSlot *s)
{
  gboolean send_eos;

  gst_element_set_locked_state (s->src->bin, TRUE);
  if (gst_element_set_state (s->src->bin, GST_STATE_NULL) == GST_STATE_CHANGE_FAILURE)
    GST_WARNING ("slot %u: could not stop the source", s->index);
  g_mutex_lock (&s->ad->lock);
  s->closing = FALSE;
  send_eos = !s->mux_eos;
  s->mux_eos = TRUE;
  g_mutex_unlock (&s->ad->lock);
  if (send_eos)
    gst_pad_send_event (s->mux_pad, gst_event_new_eos ());
}

/* After any flush of the slot's muxer pad: the resets still queued there are gone. */
static void
mux_pad_flushed (DsAdapterSlot *s)
{
  guint lost;

  g_mutex_lock (&s->ad->lock);
  lost = ds_track_slot_mux_flushed (&s->track);
  g_mutex_unlock (&s->ad->lock);
  if (lost > 0)
    GST_INFO ("slot %u: %u stream reset(s) still in the muxer dropped by the flush",
        s->index, lost);
}

/* Pre-empts the slot's file as the stock reset_source_pipeline does: FLUSH_START so a
 * streaming thread blocked downstream lets go, FLUSH_STOP(reset) right after it, both
 * through the slot's last element into the muxer pad; then EOS into the pad at once, so
 * it leaves the batch now rather than when the source is down (a decoder may take long
 * to get there, and an idle pad in the batch holds every other slot's batches); the
 * source goes to NULL after that. Whatever the dying source still pushes meanwhile is
 * dropped before the flushed pads (`closing`), so nothing meets the pad's EOS. A
 * FLUSH_STOP and an EOS are serialized: they take the pads' stream locks on the main
 * loop, as in NVIDIA's code, which the FLUSH_START has just made every streaming thread
 * there let go of. Main loop. */
static GstElement *
flush_target (DsAdapterSlot *s)
{
  return s->src->dewarper_bin.bin != NULL ? s->src->dewarper_bin.bin : s->src->cap_filter1;
}

static void
flush_slot (DsAdapterSlot *s)
{
  GstElement *target = flush_target (s);

  g_mutex_lock (&s->ad->lock);
  s->closing = TRUE;
  g_mutex_unlock (&s->ad->lock);
  /* A muxer that passes the flush on would drop every slot's frames in flight: then the
   * source just goes down (off the main loop); what it left in the muxer still comes out
   * ahead of the next stream reset, and the book discards it. */
  if (g_atomic_int_get (&s->ad->flush_forwarded))
    return;
  gst_element_send_event (target, gst_event_new_flush_start ());
  gst_element_send_event (target, gst_event_new_flush_stop (TRUE));
  mux_pad_flushed (s);
  gst_pad_send_event (s->mux_pad, gst_event_new_eos ());
  g_mutex_lock (&s->ad->lock);
  s->mux_eos = TRUE; /* flushed, then out of the batch */
  g_mutex_unlock (&s->ad->lock);
}

/* Opens a muxer pad that is at EOS again, before the next file's first event reaches
 * it (streaming thread, from the slot output probe). */
static void
reopen_mux_pad (DsAdapterSlot *s)
{
  gst_pad_send_event (s->mux_pad, gst_event_new_flush_start ());
  gst_pad_send_event (s->mux_pad, gst_event_new_flush_stop (TRUE));
  mux_pad_flushed (s);
  GST_INFO ("slot %u: muxer pad flushed for the next file", s->index);
}

typedef struct {
  DsAdapterSlot *slot;
} StopJob;

static void
on_source_down (const DsSlotCall *c)
{
  DsAdapterSlot *s = c->slot;

  if (g_atomic_int_get (&s->ad->detached))
    return;
  s->source_busy = FALSE;
  if (s->start_pending) {
    gchar *uri = g_steal_pointer (&s->pending_uri);
    gboolean still;
    s->start_pending = FALSE;
    g_mutex_lock (&s->ad->lock);
    still = s->track.book.generation == s->pending_generation
        && (s->track.book.phase == DS_SLOT_PHASE_STARTING
            || (s->live.active && s->track.book.phase == DS_SLOT_PHASE_PLAYING));
    g_mutex_unlock (&s->ad->lock);
    if (still)
      start_source (s, uri, s->pending_generation);
    g_free (uri);
  }
}

static void
stopper_run (gpointer data, gpointer user_data)
{
  StopJob *job = data;
  DsAdapterSlot *s = job->slot;
  gint64 t0 = now_ns ();

  (void) user_data;
  source_down (s);
  GST_INFO ("slot %u: source down in %" G_GINT64_FORMAT " ms", s->index,
      (now_ns () - t0) / 1000000);
  schedule (s->ad, s, 0, 0, NULL, on_source_down);
  g_free (job);
}

/* Hands the slot's source to the stopper (no-op when it is not up). */
static void
source_release (DsAdapterSlot *s, gboolean preempt)
{
  StopJob *job;

  if (!s->source_up)
    return;
  s->source_up = FALSE;
  s->source_busy = TRUE;
  if (preempt)
    flush_slot (s);
  job = g_new (StopJob, 1);
  job->slot = s;
  g_thread_pool_push (s->ad->stopper, job, NULL);
}

/* Drops the slot's tracker state (IDs go on, never reused: tracking-id-reset-mode bit 0)
 * right before the next file's first frame: the pad is then open again (a pad at EOS
 * refuses serialized events) and holds no frame of an earlier file, so the reset cannot
 * overtake one even in a muxer that forwards it out of order. Streaming thread. */
static void
send_stream_reset (DsAdapterSlot *s)
{
  /* Counted before it goes in: it may come out of the muxer before the send returns. */
  g_mutex_lock (&s->ad->lock);
  ds_track_slot_reset_sent (&s->track);
  g_mutex_unlock (&s->ad->lock);
  if (gst_pad_send_event (s->mux_pad, gst_nvevent_new_stream_reset (s->index))) {
    GST_INFO ("slot %u: stream reset sent", s->index);
    return;
  }
  g_warning ("slot %u: the muxer refused the stream reset", s->index);
  g_mutex_lock (&s->ad->lock);
  ds_track_slot_reset_not_sent (&s->track);
  g_mutex_unlock (&s->ad->lock);
}

/* Draining → idle, and the event that goes with it; the source goes down now (its
 * frames have left the tracker). */
static void
finish_slot (DsAdapterSlot *s)
{
  DsSlotDone done;
  gboolean ok;

  g_mutex_lock (&s->ad->lock);
  ok = ds_track_slot_finish (&s->track, &done);
  g_mutex_unlock (&s->ad->lock);
  if (!ok)
    return;
  source_release (s, FALSE);
  if (done.error == NULL)
    GST_INFO ("slot %u: file %" G_GINT64_FORMAT " done, %" G_GUINT64_FORMAT " frames",
        s->index, done.file_id, done.frames);
  else
    g_warning ("slot %u: file %" G_GINT64_FORMAT " failed: %s", s->index, done.file_id,
        done.error);
  ds_slot_done_emit (&done, s->ad->shim, s->index);
  ds_slot_done_clear (&done);
}

/* The current file ends (error != NULL: it failed) at the source side. A failed file is
 * pre-empted at once; a file at its EOS drains first. */
static void
end_source (DsAdapterSlot *s, const gchar *error, gboolean preempt)
{
  gboolean complete;

  if (preempt)
    source_release (s, TRUE);
  watch_stop (s);
  g_mutex_lock (&s->ad->lock);
  complete = ds_track_slot_source_end (&s->track, error, now_ns ());
  g_mutex_unlock (&s->ad->lock);
  if (complete)
    finish_slot (s);
}

static gboolean on_retry (gpointer data);

static gboolean
slot_is_live (DsAdapterSlot *s)
{
  gboolean live;

  g_mutex_lock (&s->ad->lock);
  live = s->live.active;
  g_mutex_unlock (&s->ad->lock);
  return live;
}

/* A live source failed (main loop): pre-empted, then re-played after the back-off, or
 * the file ends with file_error. refusal: reason is a refusal's text, not retried. */
static void
live_lost (DsAdapterSlot *s, const gchar *reason, gboolean refusal)
{
  DsAdapter *ad = s->ad;
  DsLiveLoss loss;
  gint64 file_id;
  gchar *text;

  g_mutex_lock (&ad->lock);
  ds_live_lost (&s->live, &s->opts, now_ns (), refusal, &loss);
  file_id = s->track.book.file_id;
  if (loss.will_retry) {
    s->track.book.generation++; /* what the failed attempt still posts is stale */
    g_clear_pointer (&s->source_error, g_free);
  }
  g_mutex_unlock (&ad->lock);
  GST_INFO ("slot %u: stream lost (%s), %s", s->index, reason,
      loss.will_retry ? "retrying" : "giving up");
  ds_shim_emit_stream_lost (ad->shim, (gint) s->index, file_id, reason, loss.will_retry,
      loss.attempt, loss.retry_in_ms);
  if (!loss.will_retry) {
    text = ds_live_loss_text (reason, refusal, &loss);
    end_source (s, text, TRUE);
    g_free (text);
    return;
  }
  watch_stop (s);
  source_release (s, TRUE);
  if (s->retry_id != 0)
    g_source_remove (s->retry_id);
  s->retry_id = g_timeout_add ((guint) loss.retry_in_ms, on_retry, s);
}

static gboolean
on_retry (gpointer data)
{
  DsAdapterSlot *s = data;
  DsAdapter *ad = s->ad;
  guint64 generation;
  gboolean go;

  s->retry_id = 0;
  if (g_atomic_int_get (&ad->detached))
    return G_SOURCE_REMOVE;
  g_mutex_lock (&ad->lock);
  go = s->live.active && s->live.phase == DS_LIVE_WAITING
      && ds_slot_book_active (&s->track.book);
  if (go)
    ds_live_retry (&s->live, now_ns ());
  generation = s->track.book.generation;
  g_mutex_unlock (&ad->lock);
  if (!go)
    return G_SOURCE_REMOVE;
  GST_INFO ("slot %u: reconnecting to %s", s->index, s->uri);
  if (s->source_busy) {
    s->start_pending = TRUE;
    s->pending_generation = generation;
    g_free (s->pending_uri);
    s->pending_uri = g_strdup (s->uri);
  } else {
    start_source (s, s->uri, generation);
  }
  return G_SOURCE_REMOVE;
}

static void
on_source_eos (const DsSlotCall *c)
{
  if (!call_is_current (c, DS_SLOT_PHASES_ACTIVE))
    return;
  if (slot_is_live (c->slot))
    live_lost (c->slot, "end of stream", FALSE);
  else
    end_source (c->slot, NULL, FALSE);
}

static void
on_source_error (const DsSlotCall *c)
{
  if (!call_is_current (c, DS_SLOT_PHASES_ACTIVE))
    return;
  if (slot_is_live (c->slot))
    live_lost (c->slot, c->text, FALSE);
  else
    end_source (c->slot, c->text, TRUE);
}

static void
on_source_refused (const DsSlotCall *c)
{
  if (call_is_current (c, DS_SLOT_PHASES_ACTIVE))
    live_lost (c->slot, c->text, TRUE);
}

static void
on_resumed (const DsSlotCall *c)
{
  DsAdapterSlot *s = c->slot;
  DsLiveResume r;
  gint64 file_id;

  if (!call_is_current (c, DS_SLOT_PHASES_ACTIVE))
    return;
  g_mutex_lock (&s->ad->lock);
  r = s->resume;
  file_id = s->track.book.file_id;
  g_mutex_unlock (&s->ad->lock);
  GST_INFO ("slot %u: stream resumed after %" G_GINT64_FORMAT " ms", s->index, r.down_ms);
  ds_shim_emit_stream_resumed (s->ad->shim, (gint) s->index, file_id, r.down_ms,
      r.attempts, r.tracker_kept);
}

static void
on_drained (const DsSlotCall *c)
{
  if (call_is_current (c, DS_SLOT_STATES (DS_SLOT_PHASE_DRAINING)))
    finish_slot (c->slot);
}

static void
on_file_started (const DsSlotCall *c)
{
  DsAdapterSlot *s = c->slot;
  gint64 file_id, duration = -1;

  if (!call_is_current (c, DS_SLOT_PHASES_ACTIVE | DS_SLOT_STATES (DS_SLOT_PHASE_DRAINING)))
    return;
  g_mutex_lock (&s->ad->lock);
  file_id = s->track.book.file_id;
  g_mutex_unlock (&s->ad->lock);
  ds_shim_emit_file_started (s->ad->shim, (gint) s->index, file_id, c->mono_ns);

  /* Asked once per file, after the first frame, when the demuxer knows it; the query
   * goes upstream from the slot output to the demuxer. */
  if (gst_pad_query_duration (s->ghost, GST_FORMAT_TIME, &duration)) {
    g_mutex_lock (&s->ad->lock);
    if (s->track.book.generation == c->generation)
      ds_slot_book_set_duration (&s->track.book, duration);
    g_mutex_unlock (&s->ad->lock);
  }
}

/* Start watchdog: a restarted decodebin may settle in PAUSED (the stock
 * watch_source_async_state_change does the same, but is static). */
static gboolean
on_watch (gpointer data)
{
  DsAdapterSlot *s = data;
  GstState state = GST_STATE_NULL, pending = GST_STATE_NULL;
  GstStateChangeReturn ret;
  gboolean current, flowing, error_queued;
  DsTrackWatch decision;

  g_mutex_lock (&s->ad->lock);
  current = s->track.book.generation == s->watch_generation
      && ds_slot_book_active (&s->track.book);
  flowing = s->track.book.phase == DS_SLOT_PHASE_PLAYING
      && (!s->live.active || s->live.phase == DS_LIVE_PLAYING);
  g_mutex_unlock (&s->ad->lock);
  if (!current) {
    s->watch_id = 0;
    return G_SOURCE_REMOVE;
  }

  ret = gst_element_get_state (s->src->bin, &state, &pending, 0);
  /* Read after the state: an element posts its error before its state change fails, and
   * the bus sync handler notes it (source_error) and queues its call at once. */
  g_mutex_lock (&s->ad->lock);
  error_queued = s->source_error != NULL;
  g_mutex_unlock (&s->ad->lock);
  decision = ds_track_watch_decide (ret == GST_STATE_CHANGE_FAILURE, error_queued,
      ret == GST_STATE_CHANGE_ASYNC,
      flowing || (state == GST_STATE_PLAYING && ret != GST_STATE_CHANGE_ASYNC),
      now_ns () - s->watch_start_ns, START_DEADLINE_NS);
  switch (decision) {
    case DS_TRACK_WATCH_WAIT:
      return G_SOURCE_CONTINUE;
    case DS_TRACK_WATCH_KICK:
      gst_element_set_state (s->src->bin, GST_STATE_PLAYING);
      return G_SOURCE_CONTINUE;
    case DS_TRACK_WATCH_DONE:
      s->watch_id = 0;
      return G_SOURCE_REMOVE;
    case DS_TRACK_WATCH_FAIL:
    default:
      s->watch_id = 0;
      if (slot_is_live (s))
        live_lost (s, ret == GST_STATE_CHANGE_FAILURE ? "the source failed to start"
            : "the source did not start in time", FALSE);
      else
        end_source (s, ret == GST_STATE_CHANGE_FAILURE ? "the source failed to start"
            : "the source did not start in time", TRUE);
      return G_SOURCE_REMOVE;
  }
}

/* Draining files whose frames stopped coming. */
static gboolean
on_tick (gpointer data)
{
  DsAdapter *ad = data;
  gint64 now = now_ns ();

  for (guint i = 0; i < ad->n_slots; i++) {
    DsAdapterSlot *s = &ad->slots[i];
    gboolean expired, stalled, connecting = FALSE;

    g_mutex_lock (&ad->lock);
    expired = ds_track_slot_drain_expired (&s->track, now,
        s->track.book.end_error != NULL ? ERROR_DRAIN_TIMEOUT_NS : EOS_DRAIN_TIMEOUT_NS);
    stalled = ds_slot_book_active (&s->track.book)
        && ds_live_stalled (&s->live, &s->opts, now, &connecting);
    g_mutex_unlock (&ad->lock);
    if (expired)
      finish_slot (s);
    if (stalled) {
      gchar *text = ds_slot_stall_text (connecting, s->opts.stall_ms);
      live_lost (s, text, FALSE);
      g_free (text);
    }
  }
  return G_SOURCE_CONTINUE;
}

/* ---------- probes (streaming threads) ---------- */

/* On the pad feeding the flush target: a pre-empted source's data stops here, before
 * the pads whose segment the flush reset (GStreamer checks for a segment before any
 * probe on those). */
static GstPadProbeReturn
on_guard (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  DsAdapterSlot *s = user_data;
  gboolean closing;

  (void) pad;
  (void) info;
  g_mutex_lock (&s->ad->lock);
  closing = s->closing;
  g_mutex_unlock (&s->ad->lock);
  return closing ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
on_slot_output (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  DsAdapterSlot *s = user_data;
  DsAdapter *ad = s->ad;
  guint64 generation;

  (void) pad;
  if (g_atomic_int_get (&ad->detached))
    return GST_PAD_PROBE_OK;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
    gint64 pts = GST_BUFFER_PTS_IS_VALID (buf) ? (gint64) GST_BUFFER_PTS (buf) : -1;
    gint64 mono = now_ns ();
    DsSlotFrame r;
    gboolean reset = FALSE, resumed = FALSE;

    g_mutex_lock (&ad->lock);
    if (s->closing) {
      g_mutex_unlock (&ad->lock);
      return GST_PAD_PROBE_DROP; /* a pre-empted source on its way down */
    }
    if (s->live.active && ds_slot_book_active (&s->track.book)) {
      DsLiveFrame what = ds_live_frame (&s->live, mono, &s->resume);

      if (what == DS_LIVE_FRAME_DROP) {
        g_mutex_unlock (&ad->lock);
        return GST_PAD_PROBE_DROP; /* the source is being taken down */
      }
      if (what == DS_LIVE_FRAME_RESUMED) {
        resumed = TRUE;
        if (!s->resume.tracker_kept)
          ds_track_slot_restart_camera (&s->track, &reset);
      }
    }
    r = ds_track_slot_source_frame (&s->track, pts, mono);
    generation = s->track.book.generation;
    if (r == DS_SLOT_FRAME_FIRST && s->reset_pending) {
      s->reset_pending = FALSE;
      reset = TRUE;
    }
    g_mutex_unlock (&ad->lock);
    if (r == DS_SLOT_FRAME_IGNORED)
      return GST_PAD_PROBE_DROP; /* no file to count it for: keep it out of the mux */
    if (reset)
      send_stream_reset (s); /* the new file's stream-start has opened the pad */
    if (r == DS_SLOT_FRAME_FIRST)
      schedule (ad, s, generation, mono, NULL, on_file_started);
    if (resumed)
      schedule (ad, s, generation, mono, NULL, on_resumed);
    return GST_PAD_PROBE_OK;
  }

  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEventType type = GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info));
    gboolean closing, reopen = FALSE;

    if (type != GST_EVENT_EOS && type != GST_EVENT_STREAM_START)
      return GST_PAD_PROBE_OK;
    g_mutex_lock (&ad->lock);
    closing = s->closing;
    generation = s->track.book.generation;
    if (!closing && type == GST_EVENT_EOS)
      s->mux_eos = TRUE;
    if (!closing && type == GST_EVENT_STREAM_START && s->mux_eos) {
      s->mux_eos = FALSE;
      /* A muxer that passes a pad's flush on would flush every slot's frames in
       * flight: then the stream-start has to reopen the pad on its own. */
      reopen = !g_atomic_int_get (&ad->flush_forwarded);
    }
    g_mutex_unlock (&ad->lock);
    if (closing)
      return GST_PAD_PROBE_DROP; /* the pre-empted source's: source_down sends one */
    if (reopen)
      reopen_mux_pad (s); /* then the stream-start, caps, segment, frames */
    if (type == GST_EVENT_EOS)
      schedule (ad, s, generation, now_ns (), NULL, on_source_eos);
    return GST_PAD_PROBE_OK; /* EOS: into the muxer, behind the file's last frame */
  }
  return GST_PAD_PROBE_OK;
}

/* The slot a stream reset event is for, or NULL for any other event. */
static DsAdapterSlot *
reset_slot (DsAdapter *ad, GstEvent *ev)
{
  guint source_id = G_MAXUINT;

  if ((gint) GST_EVENT_TYPE (ev) != (gint) GST_NVEVENT_STREAM_RESET)
    return NULL;
  gst_nvevent_parse_stream_reset (ev, &source_id);
  return source_id < ad->n_slots ? &ad->slots[source_id] : NULL;
}

/* A stream reset out of the muxer is past any flush of its pad (ds_track_slot_mux_flushed). */
static GstPadProbeReturn
on_mux_output (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  DsAdapter *ad = user_data;
  DsAdapterSlot *s;

  (void) pad;
  if (g_atomic_int_get (&ad->detached)
      || (s = reset_slot (ad, GST_PAD_PROBE_INFO_EVENT (info))) == NULL)
    return GST_PAD_PROBE_OK;
  g_mutex_lock (&ad->lock);
  ds_track_slot_mux_reset (&s->track);
  g_mutex_unlock (&ad->lock);
  return GST_PAD_PROBE_OK;
}

static void
object_from_meta (DsTrackObject *o, NvDsObjectMeta *m)
{
  const NvBbox_Coords *tb = &m->tracker_bbox_info.org_bbox_coords;

  o->track_id = m->object_id == UNTRACKED_OBJECT_ID ? -1 : (gint64) m->object_id;
  o->class_id = m->class_id;
  o->label = m->obj_label;
  o->confidence = m->confidence;
  if (tb->width > 0 && tb->height > 0) {
    o->left = tb->left;
    o->top = tb->top;
    o->width = tb->width;
    o->height = tb->height;
  } else {
    o->left = m->rect_params.left;
    o->top = m->rect_params.top;
    o->width = m->rect_params.width;
    o->height = m->rect_params.height;
  }
}

static GstPadProbeReturn
on_tracker_output (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  DsAdapter *ad = user_data;

  (void) pad;
  if (g_atomic_int_get (&ad->detached))
    return GST_PAD_PROBE_OK;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    NvDsBatchMeta *batch = gst_buffer_get_nvds_batch_meta (GST_PAD_PROBE_INFO_BUFFER (info));
    GArray *objects;
    gint64 now = now_ns ();

    if (batch == NULL)
      return GST_PAD_PROBE_OK;
    objects = g_array_sized_new (FALSE, FALSE, sizeof (DsTrackObject), 16);
    for (NvDsMetaList *l = batch->frame_meta_list; l != NULL; l = l->next) {
      NvDsFrameMeta *frame = l->data;
      DsAdapterSlot *s;
      DsTrackSinkResult r;
      guint64 generation;

      if (frame->pad_index >= ad->n_slots)
        continue;
      s = &ad->slots[frame->pad_index];
      g_array_set_size (objects, 0);
      for (NvDsMetaList *o = frame->obj_meta_list; o != NULL; o = o->next) {
        DsTrackObject obj;
        object_from_meta (&obj, o->data);
        g_array_append_val (objects, obj);
      }
      g_mutex_lock (&ad->lock);
      r = ds_track_slot_sink_frame (&s->track, (gint64) frame->buf_pts,
          (const DsTrackObject *) (gpointer) objects->data, objects->len, now,
          RESET_TIMEOUT_NS);
      generation = s->track.book.generation;
      g_mutex_unlock (&ad->lock);
      if (r == DS_TRACK_SINK_COMPLETE)
        schedule (ad, s, generation, now, NULL, on_drained);
    }
    g_array_free (objects, TRUE);
    return GST_PAD_PROBE_OK;
  }

  /* The takeover flushes every slot's pad before any file plays: if the muxer passes
   * that on, this is where it shows, at no cost. */
  if ((info->type & GST_PAD_PROBE_TYPE_EVENT_FLUSH)
      && GST_EVENT_TYPE (GST_PAD_PROBE_INFO_EVENT (info)) == GST_EVENT_FLUSH_START
      && g_atomic_int_compare_and_exchange (&ad->flush_forwarded, 0, 1))
    g_warning ("the muxer passes a per-pad flush downstream: from now on no slot's pad is "
        "flushed, neither between files nor on a stop (native/deepstream/README.md, "
        "\"Muxer pads\")");

  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    DsAdapterSlot *s = reset_slot (ad, GST_PAD_PROBE_INFO_EVENT (info));
    if (s != NULL) {
      g_mutex_lock (&ad->lock);
      ds_track_slot_sink_reset (&s->track);
      g_mutex_unlock (&ad->lock);
    }
  }
  return GST_PAD_PROBE_OK;
}

/* ---------- bus (any thread) ---------- */

static DsAdapterSlot *
slot_of (DsAdapter *ad, GstObject *src)
{
  guint index = ds_slot_of_object (src);

  return index < ad->n_slots ? &ad->slots[index] : NULL;
}

static void
on_fatal (const DsSlotCall *c)
{
  DsAdapter *ad = c->owner;
  gchar *msg = NULL;

  if (g_atomic_int_get (&ad->detached))
    return;
  g_mutex_lock (&ad->lock);
  if (!ad->fatal_sent && ad->fatal != NULL) {
    ad->fatal_sent = TRUE;
    msg = g_strdup (ad->fatal);
  }
  g_mutex_unlock (&ad->lock);
  if (msg != NULL)
    ds_shim_emit_fatal (ad->shim, msg);
  g_free (msg);
}

/* The pipeline reached PLAYING with every slot prerolled on the placeholder: take the
 * slots over now. Stopping them earlier (attach runs while the pipeline may still be
 * going to PAUSED) would strand the decodebins' pending async state change in the parent
 * bins and the pipeline would never reach PAUSED. */
static void
on_pipeline_playing (const DsSlotCall *c)
{
  DsAdapter *ad = c->owner;

  if (g_atomic_int_get (&ad->detached) || g_atomic_int_get (&ad->ready))
    return;
  for (guint i = 0; i < ad->n_slots; i++) {
    DsAdapterSlot *s = &ad->slots[i];
    /* The placeholder's frames never reached the muxer: nothing downstream to wait for. */
    flush_slot (s);
    source_down (s);
    /* From now on a restarting decodebin must not drag the pipeline back to PAUSED;
     * set only once stopped, so no async-start already passed up stays unanswered. */
    g_object_set (s->src->bin, "async-handling", TRUE, NULL);
  }
  g_atomic_int_set (&ad->ready, 1);
  if (ad->ready_kick_id != 0) {
    g_source_remove (ad->ready_kick_id);
    ad->ready_kick_id = 0;
  }
  g_message ("pipeline playing: %u slots ready", ad->n_slots);
  ds_shim_set_ready (ad->shim);
}

/* The stock handler quits on any source ERROR and on EOS: slot errors become file_error
 * here instead, pipeline EOS cannot happen by design; everything else passes on (an
 * ERROR elsewhere is fatal: reported, then the stock handler quits). */
static GstBusSyncReply
on_bus_sync (GstBus *bus, GstMessage *msg, gpointer user_data)
{
  DsAdapter *ad = user_data;

  (void) bus;
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR: {
      DsAdapterSlot *s = slot_of (ad, GST_MESSAGE_SRC (msg));
      GError *err = NULL;
      gchar *debug = NULL;
      gboolean first = FALSE;
      guint64 generation = 0;

      gst_message_parse_error (msg, &err, &debug);
      /* Before the takeover a slot error means the placeholder failed: fatal. */
      if (s != NULL && g_atomic_int_get (&ad->ready)) {
        gchar *text = ds_slot_error_text (msg);
        gint status = ds_slot_error_refusal (msg);
        gchar *refusal = NULL;
        g_mutex_lock (&ad->lock);
        if (ds_slot_book_active (&s->track.book)
            && s->source_error == NULL) {
          s->source_error = g_strdup (text);
          generation = s->track.book.generation;
          first = TRUE;
          if (s->live.active && status != 0 && s->uri != NULL)
            refusal = ds_live_refusal_text (s->uri, status);
        }
        g_mutex_unlock (&ad->lock);
        GST_INFO ("slot %u: %s (%s)", s->index, err->message, debug ? debug : "");
        /* One per file (or live attempt); later ones (typefind posts two) and stale ones
         * are dropped. */
        if (refusal != NULL)
          schedule (ad, s, generation, 0, refusal, on_source_refused);
        else if (first)
          schedule (ad, s, generation, 0, text, on_source_error);
        g_free (refusal);
        g_free (text);
        g_clear_error (&err);
        g_free (debug);
        gst_message_unref (msg); /* a sync handler owns what it drops */
        return GST_BUS_DROP;
      }
      g_mutex_lock (&ad->lock);
      if (ad->fatal == NULL)
        ad->fatal = g_strdup_printf ("%s: %s", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
            err->message);
      g_mutex_unlock (&ad->lock);
      schedule (ad, NULL, 0, 0, NULL, on_fatal);
      g_clear_error (&err);
      g_free (debug);
      return GST_BUS_PASS;
    }
    case GST_MESSAGE_EOS:
      g_warning ("unexpected pipeline EOS dropped");
      gst_message_unref (msg);
      return GST_BUS_DROP;
    case GST_MESSAGE_STATE_CHANGED:
      if (GST_MESSAGE_SRC (msg) == GST_OBJECT (ad->pipeline)) {
        GstState old_state, new_state;
        gst_message_parse_state_changed (msg, &old_state, &new_state, NULL);
        if (new_state == GST_STATE_PLAYING
            && g_atomic_int_compare_and_exchange (&ad->ready_scheduled, 0, 1))
          schedule (ad, NULL, 0, 0, NULL, on_pipeline_playing);
      }
      return GST_BUS_PASS;
    default:
      return GST_BUS_PASS;
  }
}

/* The pipeline should reach PLAYING on its own; nudge it if it does not. */
static gboolean
on_ready_kick (gpointer data)
{
  DsAdapter *ad = data;
  GstState state = GST_STATE_NULL;

  if (g_atomic_int_get (&ad->ready))
    return G_SOURCE_REMOVE;
  gst_element_get_state (ad->pipeline, &state, NULL, 0);
  g_warning ("pipeline not playing yet (%s), setting PLAYING again",
      gst_element_state_get_name (state));
  gst_element_set_state (ad->pipeline, GST_STATE_PLAYING);
  return G_SOURCE_CONTINUE;
}

static void
request_quit (DsAdapter *ad)
{
  /* event_thread_func (deepstream_app_main.c) quits the main loop once every instance
   * has quit; the stock teardown then runs. */
  ad->app->quit = TRUE;
}

static gboolean
on_sigterm (gpointer data)
{
  DsAdapter *ad = data;

  g_message ("SIGTERM: shutting down");
  ad->sigterm_id = 0;
  request_quit (ad);
  return G_SOURCE_REMOVE;
}

/* ---------- DsEngineVTable (main loop) ---------- */

/* Plays uri on a slot whose source is down (main loop). */
static void
start_source (DsAdapterSlot *s, const gchar *uri, guint64 generation)
{
  DsAdapter *ad = s->ad;
  gboolean failed = FALSE;
  gchar *failure;

  s->source_up = TRUE;
  g_object_set (s->src->src_elem, "uri", uri, NULL);
  gst_element_set_locked_state (s->src->bin, FALSE);
  if (!gst_element_sync_state_with_parent (s->src->bin)) {
    /* A missing file fails here at once; the bus error (if any) says why. The
     * file_error goes out after the reply. */
    g_mutex_lock (&ad->lock);
    failure = g_strdup (s->source_error != NULL ? s->source_error
        : "the source could not be started");
    g_mutex_unlock (&ad->lock);
    source_release (s, FALSE);
    g_mutex_lock (&ad->lock);
    if (s->track.book.generation == generation) {
      ds_track_slot_source_end (&s->track, failure, now_ns ());
      generation = s->track.book.generation;
      failed = TRUE;
    }
    g_mutex_unlock (&ad->lock);
    g_free (failure);
    if (failed)
      schedule (ad, s, generation, 0, NULL, on_drained);
    return;
  }
  watch_stop (s);
  s->watch_generation = generation;
  s->watch_start_ns = now_ns ();
  s->watch_id = g_timeout_add (WATCH_INTERVAL_MS, on_watch, s);
}

/* The source of the booked file starts, or waits for the previous file's to go down. */
static void
begin_source (DsAdapterSlot *s, const gchar *uri, guint64 generation)
{
  if (s->source_busy) {
    /* The previous file's source is still going down: start when it is. */
    s->start_pending = TRUE;
    s->pending_generation = generation;
    g_free (s->pending_uri);
    s->pending_uri = g_strdup (uri);
    return;
  }
  start_source (s, uri, generation);
}

/* The booked file's path was checked (ds_path_check_start): a FIFO, a device, a
 * directory or a path that did not answer fails the file as a source that could not
 * start. */
static void
on_path_checked (const DsSlotCall *c)
{
  DsAdapterSlot *s = c->slot;
  gchar *uri;

  if (!call_is_current (c, DS_SLOT_STATES (DS_SLOT_PHASE_STARTING)))
    return;
  if (c->text != NULL) {
    end_source (s, c->text, FALSE);
    return;
  }
  g_mutex_lock (&s->ad->lock);
  uri = g_strdup (s->uri);
  g_mutex_unlock (&s->ad->lock);
  begin_source (s, uri, c->generation);
  g_free (uri);
}

static gboolean
adapter_play (gpointer engine, const DsPlayRequest *req, GError **error)
{
  DsAdapter *ad = engine;
  DsAdapterSlot *s = &ad->slots[req->slot];
  gboolean send_reset = FALSE, ok;
  guint64 generation;

  g_mutex_lock (&ad->lock);
  ok = ds_track_slot_begin (&s->track, req->file_id, req->new_camera, req->output_path,
      &send_reset, error);
  generation = s->track.book.generation;
  g_clear_pointer (&s->source_error, g_free);
  if (ok && send_reset)
    s->reset_pending = TRUE;
  if (ok) {
    g_free (s->uri);
    s->uri = g_strdup (req->uri);
    if (ds_live_uri_is_live (req->uri))
      ds_live_begin (&s->live, now_ns ());
    else
      ds_live_end (&s->live);
  }
  g_mutex_unlock (&ad->lock);
  if (!ok)
    return FALSE;

  GST_INFO ("slot %u: file %" G_GINT64_FORMAT " %s%s", s->index, req->file_id, req->uri,
      send_reset ? " (new camera)" : "");
  if (ds_live_uri_is_live (req->uri)) {
    begin_source (s, req->uri, generation);
    return TRUE;
  }
  /* No path is opened on the main loop before it is known not to block it. */
  ds_path_check_start (s->path_check, req->uri, on_path_checked, &(DsSlotCall) {
      .owner = ad, .slot = s, .index = s->index, .generation = generation });
  return TRUE;
}

static gboolean
adapter_stop (gpointer engine, gint slot, DsStopResult *out, GError **error)
{
  DsAdapter *ad = engine;
  DsAdapterSlot *s = &ad->slots[slot];
  gboolean send_reset = FALSE;

  (void) error;
  source_release (s, TRUE);
  s->start_pending = FALSE;
  g_clear_pointer (&s->pending_uri, g_free);
  watch_stop (s);
  if (s->retry_id != 0) {
    g_source_remove (s->retry_id);
    s->retry_id = 0;
  }
  g_mutex_lock (&ad->lock);
  ds_live_end (&s->live);
  ds_track_slot_stop (&s->track, out, &send_reset);
  if (send_reset)
    s->reset_pending = TRUE;
  g_mutex_unlock (&ad->lock);
  return TRUE;
}

static gboolean
adapter_reset (gpointer engine, gint slot, GError **error)
{
  DsAdapter *ad = engine;
  DsAdapterSlot *s = &ad->slots[slot];
  gboolean send_reset = FALSE, ok;

  g_mutex_lock (&ad->lock);
  ok = ds_track_slot_reset (&s->track, &send_reset, error);
  if (ok && send_reset)
    s->reset_pending = TRUE; /* sent in front of the next file */
  g_mutex_unlock (&ad->lock);
  return ok;
}

static void
adapter_progress (gpointer engine, gint slot, DsSlotProgress *out)
{
  DsAdapter *ad = engine;

  g_mutex_lock (&ad->lock);
  ds_slot_book_progress (&ad->slots[slot].track.book, out);
  if (ds_slot_book_busy (&ad->slots[slot].track.book))
    ds_live_progress (&ad->slots[slot].live, now_ns (), &out->live);
  g_mutex_unlock (&ad->lock);
}

static void
adapter_shutdown (gpointer engine)
{
  g_message ("shutdown requested");
  request_quit (engine);
}

static const DsEngineVTable adapter_vtable = {
  .name = "deepstream",
  .version = ADAPTER_VERSION,
  .play = adapter_play,
  .stop = adapter_stop,
  .reset = adapter_reset,
  .progress = adapter_progress,
  .shutdown = adapter_shutdown,
};

/* ---------- attach / detach ---------- */

static void
adapter_release_pipeline_refs (DsAdapter *ad)
{
  for (guint i = 0; i < ad->n_slots; i++) {
    g_clear_object (&ad->slots[i].ghost);
    g_clear_object (&ad->slots[i].guard);
    g_clear_object (&ad->slots[i].mux_pad);
  }
  g_clear_object (&ad->sink_pad);
  g_clear_object (&ad->mux_src);
  g_clear_object (&ad->bus);
}

/* Undoes a failed attach. */
static void
adapter_clear (DsAdapter *ad)
{
  adapter_release_pipeline_refs (ad);
  for (guint i = 0; i < ad->n_slots; i++) {
    ds_track_slot_clear (&ad->slots[i].track);
    g_free (ad->slots[i].source_error);
    g_free (ad->slots[i].pending_uri);
    g_free (ad->slots[i].uri);
  }
  g_free (ad->slots);
  g_free (ad->fatal);
  g_mutex_clear (&ad->lock);
  memset (ad, 0, sizeof (*ad));
}

/* The config file as given on our command line (-c), made absolute. */
static gchar *
config_path_from_cmdline (void)
{
  gchar *raw = NULL, *arg, *path = NULL;
  gsize len = 0;
  GPtrArray *argv;

  if (!g_file_get_contents ("/proc/self/cmdline", &raw, &len, NULL))
    return NULL;
  argv = g_ptr_array_new ();
  for (gsize off = 0; off < len; off += strlen (raw + off) + 1)
    g_ptr_array_add (argv, raw + off);
  g_ptr_array_add (argv, NULL);
  arg = ds_track_config_arg ((const gchar *const *) argv->pdata, (gint) argv->len - 1);
  if (arg != NULL)
    path = g_canonicalize_filename (arg, NULL);
  g_free (arg);
  g_ptr_array_unref (argv);
  g_free (raw);
  return path;
}

static GArray *
config_gpu_ids (const NvDsConfig *config)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (guint));
  GArray *out;

  for (guint i = 0; i < config->num_source_sub_bins; i++)
    g_array_append_val (ids, config->multi_source_config[i].gpu_id);
  g_array_append_val (ids, config->streammux_config.gpu_id);
  if (config->primary_gie_config.enable)
    g_array_append_val (ids, config->primary_gie_config.gpu_id);
  if (config->tracker_config.enable)
    g_array_append_val (ids, config->tracker_config.gpu_id);
  out = ds_slot_gpu_ids ((const guint *) (gpointer) ids->data, ids->len);
  g_array_unref (ids);
  return out;
}

/* Keyboard commands (q quits) must not reach the stock handler, and a closed stdin makes
 * it print a newline every 40 ms: give it a pipe that never has data. */
static gint
detach_stdin (void)
{
  gint fds[2];
  GError *err = NULL;

  if (!g_unix_open_pipe (fds, FD_CLOEXEC, &err)) {
    g_warning ("stdin: %s", err->message);
    g_error_free (err);
    return -1;
  }
  if (dup2 (fds[0], STDIN_FILENO) < 0)
    g_warning ("stdin: %s", g_strerror (errno));
  close (fds[0]);
  return fds[1];
}

/* Each slot's live-source options from the -c config, its slots numbered as
 * deepstream-app numbers its sources (ds_slot_config_sources). FALSE (why filled) on a
 * bad value. */
static gboolean
load_live_options (DsAdapter *ad, const gchar *config_path, GString *why)
{
  GKeyFile *kf = g_key_file_new ();
  GArray *slots = NULL;
  GError *err = NULL;

  for (guint i = 0; i < ad->n_slots; i++)
    ds_live_options_init (&ad->slots[i].opts);
  if (!g_key_file_load_from_file (kf, config_path, G_KEY_FILE_NONE, &err))
    g_string_append_printf (why, "%s: %s", config_path, err->message);
  else if ((slots = ds_slot_config_sources (kf, &err)) == NULL)
    g_string_append (why, err->message);
  else {
    for (guint i = 0; i < ad->n_slots && i < slots->len; i++)
      ad->slots[i].opts = g_array_index (slots, DsLiveOptions, i);
    if (slots->len < ad->n_slots)
      g_warning ("live options: %u of %u slots matched to [sourceK] groups, the others "
          "take the defaults", slots->len, ad->n_slots);
  }
  if (slots != NULL)
    g_array_unref (slots);
  g_clear_error (&err);
  g_key_file_unref (kf);
  return why->len == 0;
}

static gboolean
check_config (AppCtx *app, GString *why)
{
  NvDsConfig *config = &app->config;
  NvDsSrcParentBin *parent = &app->pipeline.multi_src_bin;
  const gchar *tracker;

  if (config->pipeline_recreate_sec != 0)
    g_string_append (why, "pipeline-recreate-sec must be 0; ");
  if (config->file_loop != 0)
    g_string_append (why, "file-loop must be 0; ");
  if (config->use_nvmultiurisrcbin)
    g_string_append (why, "use-nvmultiurisrcbin is not supported; ");
  /* The new muxer ignores [streammux] width/height/batched-push-timeout (deepstream-app
   * sets them on the legacy muxer only), so output coordinates would silently change;
   * its per-pad flush and idle handling also differ from what the adapter is built for. */
  if (g_strcmp0 (g_getenv ("USE_NEW_NVSTREAMMUX"), "yes") == 0)
    g_string_append (why, "USE_NEW_NVSTREAMMUX=yes (the new nvstreammux) is not supported, "
        "unset it; ");
  if (config->num_source_sub_bins == 0 || parent->num_bins != config->num_source_sub_bins
      || parent->streammux == NULL)
    g_string_append (why, "no muxed sources; ");
  for (guint i = 0; i < config->num_source_sub_bins && i < MAX_SOURCE_BINS; i++) {
    NvDsSrcBin *sub = &parent->sub_bins[i];
    if (sub->bin == NULL || sub->src_elem == NULL || sub->cap_filter1 == NULL
        || sub->config == NULL || sub->config->type != NV_DS_SOURCE_URI
        || sub->config->loop)
      g_string_append_printf (why, "source %u is not a plain URI source (type=2 or 3); ", i);
  }
  tracker = ds_track_check_tracker (config->tracker_config.enable,
      config->tracker_config.tracking_id_reset_mode);
  if (tracker != NULL)
    g_string_append_printf (why, "%s; ", tracker);
  return why->len == 0;
}

gboolean
ds_app_hooks_attach (AppCtx **app_ctx, guint n_instances)
{
  const gchar *socket_path = g_getenv ("DS_CONTROL_SOCKET");
  DsAdapter *ad;
  AppCtx *app;
  GString *why;
  GArray *gpu_ids;
  gchar *config_path;
  GError *err = NULL;
  GstElement *sink_bin;
  GstPad *pad;

  if (socket_path == NULL || socket_path[0] == '\0' || adapter_storage.slots != NULL)
    return TRUE;
  GST_DEBUG_CATEGORY_INIT (ds_adapter_debug, "dsadapter", 0, "deepstream-app adapter");

  if (n_instances != 1) {
    g_printerr ("control mode: exactly one config file (-c) is supported\n");
    return FALSE;
  }
  app = app_ctx[0];
  why = g_string_new (NULL);
  if (!check_config (app, why)) {
    g_printerr ("control mode: %s\n", why->str);
    g_string_free (why, TRUE);
    return FALSE;
  }
  g_string_free (why, TRUE);
  config_path = config_path_from_cmdline ();
  if (config_path == NULL) {
    g_printerr ("control mode: no -c config file on the command line\n");
    return FALSE;
  }

  ad = &adapter_storage;
  memset (ad, 0, sizeof (*ad));
  g_mutex_init (&ad->lock);
  ad->app = app;
  ad->stdin_keep_fd = -1;
  ad->pipeline = app->pipeline.pipeline;
  ad->bus = gst_pipeline_get_bus (GST_PIPELINE (ad->pipeline));
  ad->n_slots = app->config.num_source_sub_bins;
  ad->slots = g_new0 (DsAdapterSlot, ad->n_slots);
  for (guint i = 0; i < ad->n_slots; i++) {
    DsAdapterSlot *s = &ad->slots[i];
    gchar pad_name[32];
    s->ad = ad;
    s->index = i;
    s->src = &app->pipeline.multi_src_bin.sub_bins[i];
    ds_track_slot_init (&s->track, i);
    g_snprintf (pad_name, sizeof (pad_name), "sink_%u", i);
    s->mux_pad = gst_element_get_static_pad (app->pipeline.multi_src_bin.streammux, pad_name);
    s->ghost = gst_element_get_static_pad (s->src->bin, "src");
    ds_slot_tag_element (s->src->bin, i);
    if (s->mux_pad == NULL || s->ghost == NULL) {
      g_printerr ("control mode: slot %u is not linked to the muxer\n", i);
      g_free (config_path);
      adapter_clear (ad);
      return FALSE;
    }
  }
  why = g_string_new (NULL);
  if (!load_live_options (ad, config_path, why)) {
    g_printerr ("control mode: %s\n", why->str);
    g_string_free (why, TRUE);
    g_free (config_path);
    adapter_clear (ad);
    return FALSE;
  }
  g_string_free (why, TRUE);
  /* rtspsrc takes the slot's select-rtp-protocol and latency (after the stock callback,
   * so ours wins; the stock one reads the same keys). */
  for (guint i = 0; i < ad->n_slots; i++)
    g_signal_connect (ad->slots[i].src->src_elem, "source-setup",
        G_CALLBACK (ds_slot_on_source_setup), &ad->slots[i].opts);

  gpu_ids = config_gpu_ids (&app->config);
  ad->shim = ds_shim_new (&adapter_vtable, ad, ad->n_slots, config_path,
      (const gint *) (gpointer) gpu_ids->data, gpu_ids->len);
  g_array_unref (gpu_ids);
  g_free (config_path);
  if (!ds_shim_start (ad->shim, socket_path, &err)) {
    g_printerr ("control mode: %s: %s\n", socket_path, err->message);
    g_error_free (err);
    ds_shim_free (ad->shim);
    adapter_clear (ad);
    return FALSE;
  }

  /* The slots play the placeholder until the pipeline is PLAYING (on_pipeline_playing
   * takes them over); meanwhile the probe keeps its frames and EOS out of the muxer. */
  for (guint i = 0; i < ad->n_slots; i++) {
    DsAdapterSlot *s = &ad->slots[i];
    s->ghost_probe = gst_pad_add_probe (s->ghost,
        GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_slot_output, s,
        NULL);
    s->guard = NULL;
    if ((pad = gst_element_get_static_pad (flush_target (s), "sink")) != NULL) {
      s->guard = gst_pad_get_peer (pad);
      gst_object_unref (pad);
    }
    if (s->guard != NULL)
      s->guard_probe = gst_pad_add_probe (s->guard,
          GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST, on_guard, s, NULL);
  }

  if (app->config.tracker_config.enable)
    sink_bin = app->pipeline.common_elements.tracker_bin.bin;
  else if (app->config.primary_gie_config.enable)
    sink_bin = app->pipeline.common_elements.primary_gie_bin.bin;
  else
    sink_bin = app->pipeline.multi_src_bin.bin;
  if (!app->config.tracker_config.enable)
    g_warning ("no [tracker]: per-file output has no track ids");
  ad->sink_pad = sink_bin != NULL ? gst_element_get_static_pad (sink_bin, "src") : NULL;
  if (ad->sink_pad != NULL)
    ad->sink_probe = gst_pad_add_probe (ad->sink_pad,
        GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM
        | GST_PAD_PROBE_TYPE_EVENT_FLUSH, on_tracker_output,
        ad, NULL);
  else
    g_warning ("no analytics output pad found: per-file output disabled");
  ad->mux_src = gst_element_get_static_pad (app->pipeline.multi_src_bin.streammux, "src");
  if (ad->mux_src != NULL)
    ad->mux_src_probe = gst_pad_add_probe (ad->mux_src, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
        on_mux_output, ad, NULL);

  /* Each file's EOS goes into the muxer, so every slot's pad is at EOS when all are idle:
   * the muxer must not forward that as a pipeline EOS (the shipped configs say
   * drop-pipeline-eos=1; a config that does not would end the pipeline). */
  if (g_object_class_find_property (G_OBJECT_GET_CLASS (app->pipeline.multi_src_bin.streammux),
          "drop-pipeline-eos") != NULL)
    g_object_set (app->pipeline.multi_src_bin.streammux, "drop-pipeline-eos", TRUE, NULL);
  else
    g_warning ("the muxer has no drop-pipeline-eos: idle slots may end the pipeline");
  /* One thread per slot for the process life: no thread (and malloc arena) per switch. */
  ad->stopper = g_thread_pool_new (stopper_run, ad, (gint) ad->n_slots, TRUE, NULL);
  for (guint i = 0; i < ad->n_slots; i++)
    ad->slots[i].path_check = ds_path_check_new (NULL, DS_PATH_CHECK_TIMEOUT_MS,
        ds_path_check_local, NULL);
  gst_bus_set_sync_handler (ad->bus, on_bus_sync, ad, NULL);
  ad->tick_id = g_timeout_add (TICK_INTERVAL_MS, on_tick, ad);
  ad->sigterm_id = g_unix_signal_add (SIGTERM, on_sigterm, ad);
  ad->ready_kick_id = g_timeout_add_seconds (READY_KICK_S, on_ready_kick, ad);
  ad->stdin_keep_fd = detach_stdin ();
  adapter = ad;
  g_message ("control mode: %u slots, socket %s", ad->n_slots, socket_path);
  return TRUE;
}

void
ds_app_hooks_detach (void)
{
  DsAdapter *ad = adapter;
  gboolean fatal;
  gchar *fatal_msg = NULL;

  if (ad == NULL)
    return;
  adapter = NULL;
  g_atomic_int_set (&ad->detached, 1);

  gst_bus_set_sync_handler (ad->bus, NULL, NULL, NULL);
  if (ad->sink_probe != 0)
    gst_pad_remove_probe (ad->sink_pad, ad->sink_probe);
  if (ad->mux_src_probe != 0)
    gst_pad_remove_probe (ad->mux_src, ad->mux_src_probe);
  if (ad->tick_id != 0)
    g_source_remove (ad->tick_id);
  if (ad->sigterm_id != 0)
    g_source_remove (ad->sigterm_id);
  if (ad->ready_kick_id != 0)
    g_source_remove (ad->ready_kick_id);

  /* Slots on their way down get there first. */
  g_thread_pool_free (ad->stopper, FALSE, TRUE);
  ad->stopper = NULL;
  for (guint i = 0; i < ad->n_slots; i++) {
    DsAdapterSlot *s = &ad->slots[i];
    gst_pad_remove_probe (s->ghost, s->ghost_probe);
    watch_stop (s);
    if (s->retry_id != 0) {
      g_source_remove (s->retry_id);
      s->retry_id = 0;
    }
    if (s->source_up) {
      s->source_up = FALSE;
      flush_slot (s);
      source_down (s);
    }
    if (s->guard_probe != 0)
      gst_pad_remove_probe (s->guard, s->guard_probe);
    g_clear_pointer (&s->pending_uri, g_free);
    g_clear_pointer (&s->uri, g_free);
    g_clear_pointer (&s->path_check, ds_path_check_free);
    /* Taken-over slots stay NULL and locked: unlocked, the stock teardown's state change
     * would first raise them to PAUSED with whatever uri they had last. */
  }

  g_mutex_lock (&ad->lock);
  for (guint i = 0; i < ad->n_slots; i++)
    ds_track_slot_clear (&ad->slots[i].track); /* closes partial outputs */
  fatal = ad->fatal != NULL;
  if (fatal && !ad->fatal_sent) {
    ad->fatal_sent = TRUE;
    fatal_msg = g_strdup (ad->fatal);
  }
  g_mutex_unlock (&ad->lock);
  if (fatal_msg != NULL)
    ds_shim_emit_fatal (ad->shim, fatal_msg);
  g_free (fatal_msg);
  ds_shim_free (ad->shim);
  ad->shim = NULL;
  if (ad->stdin_keep_fd >= 0)
    close (ad->stdin_keep_fd);
  ad->stdin_keep_fd = -1;
  adapter_release_pipeline_refs (ad);

  if (fatal) {
    /* The pipeline failed as a whole: its teardown may hang, and the protocol says
     * exit 1 right after `fatal`. The driver reclaims the GPU. */
    g_printerr ("fatal pipeline error, exiting\n");
    fflush (NULL);
    _exit (1);
  }
}
