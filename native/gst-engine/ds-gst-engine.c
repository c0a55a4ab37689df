/* ds-gst-engine: the plain-GStreamer engine behind the control shim.
 *
 * One pipeline; slot i is `uridecodebin (locked state) → fakesink (sync=false)`.
 * A buffer probe on the fakesink pad counts frames and writes the per-file output; it
 * also swallows EOS so the sink stays usable for the next file. Switching a slot
 * touches only its uridecodebin: NULL, new uri, PLAYING — the rest of the pipeline and
 * the other slots keep running.
 *
 * Streaming threads never change state: they queue an event (started / EOS / error)
 * tagged with the slot's generation to the main loop, which drops it when the file it
 * belongs to is already gone. Bus messages are turned into such events by a sync
 * handler, so no message piles up on the bus and each file reports at most one error.
 *
 * A file's local path is checked off the main loop before GStreamer opens it (a FIFO, a
 * device, a directory or a hung mount would block it; ds_path_check_start).
 *
 * A watchdog fails a file that produces no frame for DS_GST_STALL_TIMEOUT_MS (5 s):
 * decodebin drops a demuxer's error posted while it is still being autoplugged, which
 * otherwise leaves the slot waiting forever.
 *
 * A live uri (rtsp, http, udp) plays until stopped: its EOS, error or stall (the slot's
 * live-stall-sec) is a loss, answered by a re-play of the same uri from a main-loop timer
 * with back-off (DsLive in ds-live.h); 401/403/404 refusals end it at once. */
#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <gst/gst.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "ds-config.h"
#include "ds-gst-output.h"
#include "ds-live.h"
#include "ds-path-check.h"
#include "ds-shim.h"
#include "ds-slot-book.h"
#include "ds-slot-gst.h"

GST_DEBUG_CATEGORY_STATIC (ds_gst_engine_debug);
#define GST_CAT_DEFAULT ds_gst_engine_debug

#define DS_DEFAULT_STALL_MS 5000
/* An hour: beyond it the watchdog is off in all but name (and ms → ns must not overflow). */
#define DS_MAX_STALL_MS 3600000
#define DS_WATCHDOG_PERIOD_MS 250

typedef struct _DsEngine DsEngine;

typedef struct {
  DsEngine *engine;
  guint index;
  GstElement *dec;
  GstElement *sink;
  GstPad *sinkpad;

  GMutex lock; /* guards everything below: streaming threads and main loop share it */
  DsSlotBook book;
  GstSegment segment;
  gboolean video_linked;
  gint64 play_mono_ns; /* when the current file was asked for */
  DsLive live;
  DsLiveResume resume; /* of the last resumed outage, for its event */

  gboolean checking;   /* the file's path is being checked: the watchdog waits */

  /* main loop only */
  DsPathCheck *path_check;
  const DsLiveOptions *opts;
  gchar *uri;          /* of the current file, for re-plays */
  guint retry_id;      /* the pending re-play's timer, 0 = none */
} DsSlot;

struct _DsEngine {
  DsConfig *config;
  GMainContext *context;
  GMainLoop *loop;
  GstElement *pipeline;
  DsSlot *slots;
  DsShim *shim;
  gint exit_code;
  gint64 stall_ns;     /* a playing slot without a new frame for this long has failed */
  gint decoder_threads;
  guint watchdog_id;
};

typedef enum {
  DS_EV_STARTED,
  DS_EV_EOS,
  DS_EV_ERROR,
  DS_EV_FATAL,
  DS_EV_REFUSED,  /* a live source's refusal that is not retried (text: why) */
  DS_EV_RESUMED,  /* a live source's first frame after an outage (slot->resume) */
} DsEventKind;

static gint64
mono_now_ns (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (gint64) ts.tv_sec * G_GINT64_CONSTANT (1000000000) + ts.tv_nsec;
}

/* ---------- streaming thread → main loop ---------- */

static void on_event (const DsSlotCall *call);

/* slot NULL: an engine-wide event (DS_EV_FATAL). */
static void
queue_event (DsEngine *engine, DsSlot *slot, guint64 generation, DsEventKind kind,
    gint64 mono_ns, const gchar *text)
{
  guint index = slot != NULL ? slot->index : DS_SLOT_NONE;

  GST_LOG ("slot %d: queue event %d gen %" G_GUINT64_FORMAT, (gint) index, kind, generation);
  ds_slot_call_queue (engine->context, on_event, &(DsSlotCall) {
      .owner = engine, .slot = slot, .index = index, .generation = generation,
      .kind = kind, .mono_ns = mono_ns, .text = text });
}

/* Queues an event for the file the slot is playing now, if it is playing one. The
 * generation, read under the lock, lets the main loop drop an event that arrives
 * after its file was replaced. */
static void
queue_if_playing (DsSlot *slot, DsEventKind kind, gint64 mono_ns, const gchar *text)
{
  gboolean playing;
  guint64 gen;

  g_mutex_lock (&slot->lock);
  playing = ds_slot_book_active (&slot->book);
  gen = slot->book.generation;
  g_mutex_unlock (&slot->lock);
  if (playing)
    queue_event (slot->engine, slot, gen, kind, mono_ns, text);
}

static GstPadProbeReturn
on_sink_probe (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  DsSlot *slot = user_data;
  (void) pad;

  if (info->type & (GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST)) {
    gint64 mono = mono_now_ns ();
    GstBuffer *single = (info->type & GST_PAD_PROBE_TYPE_BUFFER) ?
        GST_PAD_PROBE_INFO_BUFFER (info) : NULL;
    GstBufferList *list = single == NULL ? GST_PAD_PROBE_INFO_BUFFER_LIST (info) : NULL;
    guint n = single != NULL ? 1 : gst_buffer_list_length (list);
    gboolean first = FALSE, resumed = FALSE;
    guint64 gen;

    g_mutex_lock (&slot->lock);
    for (guint i = 0; i < n; i++) {
      GstBuffer *buf = single != NULL ? single : gst_buffer_list_get (list, i);
      GstClockTime pts = GST_BUFFER_PTS (buf);
      gint64 pos = -1;

      if (ds_slot_book_active (&slot->book) && slot->live.active) {
        DsLiveFrame what = ds_live_frame (&slot->live, mono, &slot->resume);

        if (what == DS_LIVE_FRAME_DROP)
          continue;
        if (what == DS_LIVE_FRAME_RESUMED) {
          resumed = TRUE;
          if (!slot->resume.tracker_kept)
            ds_slot_book_restart_camera (&slot->book); /* a long outage */
        }
      }

      if (GST_CLOCK_TIME_IS_VALID (pts)) {
        guint64 st = gst_segment_to_stream_time (&slot->segment, GST_FORMAT_TIME, pts);
        if (GST_CLOCK_TIME_IS_VALID (st))
          pos = (gint64) st;
      }
      first |= ds_gst_output_frame (&slot->book, GST_CLOCK_TIME_IS_VALID (pts) ?
          (gint64) pts : -1, pos, mono) == DS_SLOT_FRAME_FIRST;
    }
    gen = slot->book.generation;
    g_mutex_unlock (&slot->lock);
    if (first)
      queue_event (slot->engine, slot, gen, DS_EV_STARTED, mono, NULL);
    if (resumed)
      queue_event (slot->engine, slot, gen, DS_EV_RESUMED, mono, NULL);
    return GST_PAD_PROBE_OK;
  }

  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

    GST_LOG ("slot %u: event %s", slot->index, GST_EVENT_TYPE_NAME (event));

    if (GST_EVENT_TYPE (event) == GST_EVENT_SEGMENT) {
      const GstSegment *seg;

      gst_event_parse_segment (event, &seg);
      g_mutex_lock (&slot->lock);
      if (seg->format == GST_FORMAT_TIME)
        gst_segment_copy_into (seg, &slot->segment);
      g_mutex_unlock (&slot->lock);
    } else if (GST_EVENT_TYPE (event) == GST_EVENT_EOS) {
      queue_if_playing (slot, DS_EV_EOS, mono_now_ns (), NULL);
      /* The sink must never see EOS: it would refuse the next file's data. */
      return GST_PAD_PROBE_DROP;
    }
  }
  return GST_PAD_PROBE_OK;
}

static void
on_pad_added (GstElement *dec, GstPad *pad, gpointer user_data)
{
  DsSlot *slot = user_data;
  GstCaps *caps = gst_pad_get_current_caps (pad);
  const gchar *name;
  gboolean is_video;
  (void) dec;

  if (caps == NULL)
    caps = gst_pad_query_caps (pad, NULL);
  name = gst_caps_get_size (caps) > 0 ?
      gst_structure_get_name (gst_caps_get_structure (caps, 0)) : "";
  is_video = g_str_has_prefix (name, "video/");
  GST_DEBUG_OBJECT (dec, "slot %u: new pad %s:%s with %s", slot->index,
      GST_DEBUG_PAD_NAME (pad), name);
  gst_caps_unref (caps);
  if (!is_video)
    return; /* left unlinked: the demuxer carries on as long as the video pad is linked */

  g_mutex_lock (&slot->lock);
  if (!slot->video_linked) {
    GstPadLinkReturn ret = gst_pad_link (pad, slot->sinkpad);
    if (ret == GST_PAD_LINK_OK)
      slot->video_linked = TRUE;
    else
      GST_WARNING ("slot %u: cannot link video pad: %s", slot->index,
          gst_pad_link_get_name (ret));
  }
  g_mutex_unlock (&slot->lock);
}

static void
on_no_more_pads (GstElement *dec, gpointer user_data)
{
  DsSlot *slot = user_data;
  gboolean no_video;
  guint64 gen;
  (void) dec;

  g_mutex_lock (&slot->lock);
  no_video = !slot->video_linked && ds_slot_book_active (&slot->book);
  gen = slot->book.generation;
  g_mutex_unlock (&slot->lock);
  if (no_video)
    queue_event (slot->engine, slot, gen, DS_EV_ERROR, 0, "no video stream");
}

/* Software decoders get DS_GST_DECODER_THREADS threads (default 1, 0 = libav's auto):
 * the slots are the parallelism, and a per-file thread pool costs start-up time and,
 * with frame threading, frames of latency before the first picture — the switch gap. */
static void
on_deep_element_added (GstBin *bin, GstBin *sub_bin, GstElement *element, gpointer data)
{
  DsEngine *engine = data;
  GstElementFactory *f = gst_element_get_factory (element);
  (void) bin;
  (void) sub_bin;

  if (f != NULL && g_str_has_prefix (GST_OBJECT_NAME (f), "avdec_") &&
      g_object_class_find_property (G_OBJECT_GET_CLASS (element), "max-threads") != NULL)
    g_object_set (element, "max-threads", engine->decoder_threads, NULL);
}

static GstBusSyncReply
on_bus_sync (GstBus *bus, GstMessage *msg, gpointer user_data)
{
  DsEngine *engine = user_data;
  (void) bus;

  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR: {
      gchar *text = ds_slot_error_text (msg);
      guint index = ds_slot_of_object (GST_MESSAGE_SRC (msg));

      GST_INFO_OBJECT (GST_MESSAGE_SRC (msg), "error (slot %d): %s",
          index < engine->config->n_slots ? (gint) index : -1, text);
      if (index < engine->config->n_slots) {
        DsSlot *slot = &engine->slots[index];
        gint status = ds_slot_error_refusal (msg);
        gboolean live;

        gchar *why = NULL;

        g_mutex_lock (&slot->lock);
        live = slot->live.active;
        if (live && status != 0)
          why = ds_live_refusal_text (slot->uri, status);
        g_mutex_unlock (&slot->lock);
        if (why != NULL) {
          queue_if_playing (slot, DS_EV_REFUSED, 0, why);
          g_free (why);
        } else {
          queue_if_playing (slot, DS_EV_ERROR, 0, text);
        }
      } else
        queue_event (engine, NULL, 0, DS_EV_FATAL, 0, text);
      g_free (text);
      break;
    }
    case GST_MESSAGE_WARNING: {
      GError *err = NULL;
      gchar *debug = NULL;

      gst_message_parse_warning (msg, &err, &debug);
      GST_INFO_OBJECT (GST_MESSAGE_SRC (msg), "warning: %s (%s)", err->message,
          GST_STR_NULL (debug));
      g_free (debug);
      g_error_free (err);
      break;
    }
    default:
      break;
  }
  /* Nobody polls this bus: every message ends here (and DROP means we own it). */
  gst_message_unref (msg);
  return GST_BUS_DROP;
}

/* ---------- main loop side ---------- */

/* Takes the slot's decoder down; joins its streaming threads. */
static void
slot_halt (DsSlot *slot)
{
  if (gst_element_set_state (slot->dec, GST_STATE_NULL) == GST_STATE_CHANGE_FAILURE)
    GST_WARNING ("slot %u: decoder refused NULL", slot->index);
}

/* The book has ended the file: report it, then take the decoder down (after the event:
 * the client's next request overlaps with the teardown). */
static void
slot_finish (DsSlot *slot, DsSlotDone *done)
{
  GST_INFO ("slot %u: file %" G_GINT64_FORMAT " %s%s", slot->index, done->file_id,
      done->error != NULL ? "failed: " : "done", GST_STR_NULL (done->error));
  ds_slot_done_emit (done, slot->engine->shim, slot->index);
  ds_slot_done_clear (done);
  slot_halt (slot);
}

static gboolean on_retry (gpointer data);

/* A live source failed (main loop). refusal: it will not heal, reason is the refusal's
 * text. Either the slot waits for a re-play, or the file ends with file_error. */
static void
live_lost (DsEngine *engine, DsSlot *slot, const gchar *reason, gboolean refusal)
{
  DsLiveLoss loss;
  DsSlotDone done;
  gint64 file_id;
  gchar *text;

  g_mutex_lock (&slot->lock);
  ds_live_lost (&slot->live, slot->opts, mono_now_ns (), refusal, &loss);
  file_id = slot->book.file_id;
  text = ds_live_loss_text (reason, refusal, &loss);
  if (loss.will_retry)
    slot->book.generation++; /* whatever the failed attempt still posts is stale */
  else
    ds_slot_book_end (&slot->book, text, &done);
  g_mutex_unlock (&slot->lock);
  g_free (text);

  GST_INFO ("slot %u: stream lost (%s), %s", slot->index, reason,
      loss.will_retry ? "retrying" : "giving up");
  ds_shim_emit_stream_lost (engine->shim, (gint) slot->index, file_id, reason,
      loss.will_retry, loss.attempt, loss.retry_in_ms);
  if (!loss.will_retry) {
    slot_finish (slot, &done);
    return;
  }
  slot_halt (slot);
  slot->retry_id = g_timeout_add ((guint) loss.retry_in_ms, on_retry, slot);
}

/* Starts the slot's decoder on slot->uri; a synchronous failure becomes an error event. */
static void
slot_start (DsEngine *engine, DsSlot *slot, guint64 gen, gboolean live)
{
  GstStateChangeReturn ret;

  /* A live source prerolls asynchronously (rtspsrc): a locked bin then commits PAUSED
   * and stops there unless it handles the async change itself. It also gets no base time
   * from its parent, and rtspsrc's jitter buffer runs on the clock. */
  g_object_set (slot->dec, "uri", slot->uri, "async-handling", live, NULL);
  gst_element_set_base_time (slot->dec, gst_element_get_base_time (engine->pipeline));
  ret = gst_element_set_state (slot->dec, GST_STATE_PLAYING);
  GST_DEBUG ("slot %u: decoder going to PLAYING: %s", slot->index,
      gst_element_state_change_return_get_name (ret));
  if (ret == GST_STATE_CHANGE_FAILURE) {
    /* The ERROR message that explains it was queued first and wins. */
    queue_event (engine, slot, gen, DS_EV_ERROR, 0, "cannot start playback");
  }
}

static gboolean
on_retry (gpointer data)
{
  DsSlot *slot = data;
  guint64 gen;
  gboolean go;

  slot->retry_id = 0;
  g_mutex_lock (&slot->lock);
  go = ds_slot_book_active (&slot->book) && slot->live.active
      && slot->live.phase == DS_LIVE_WAITING;
  if (go) {
    ds_live_retry (&slot->live, mono_now_ns ());
    slot->video_linked = FALSE;
    gst_segment_init (&slot->segment, GST_FORMAT_TIME);
  }
  gen = slot->book.generation;
  g_mutex_unlock (&slot->lock);
  if (go) {
    GST_DEBUG ("slot %u: reconnecting to %s", slot->index, slot->uri);
    slot_start (slot->engine, slot, gen, TRUE);
  }
  return G_SOURCE_REMOVE;
}

static gboolean
on_watchdog (gpointer data)
{
  DsEngine *engine = data;
  gint64 now = mono_now_ns ();

  for (guint i = 0; i < engine->config->n_slots; i++) {
    DsSlot *slot = &engine->slots[i];
    DsSlotDone done;
    gint64 last;
    gchar *text = NULL;
    gboolean connecting;

    g_mutex_lock (&slot->lock);
    if (ds_slot_book_active (&slot->book) && slot->live.active) {
      if (ds_live_stalled (&slot->live, slot->opts, now, &connecting))
        text = ds_slot_stall_text (connecting, slot->opts->stall_ms);
      g_mutex_unlock (&slot->lock);
      if (text != NULL)
        live_lost (engine, slot, text, FALSE);
      g_free (text);
      continue;
    }
    last = slot->book.last_mono_ns >= 0 ? slot->book.last_mono_ns : slot->play_mono_ns;
    if (ds_slot_book_active (&slot->book) && !slot->checking
        && now - last > engine->stall_ns) {
      text = ds_slot_stall_text (slot->book.frames == 0,
          engine->stall_ns / G_GINT64_CONSTANT (1000000));
      ds_slot_book_end (&slot->book, text, &done);
    }
    g_mutex_unlock (&slot->lock);
    if (text != NULL) {
      slot_finish (slot, &done);
      g_free (text);
    }
  }
  return G_SOURCE_CONTINUE;
}

static void
on_event (const DsSlotCall *ev)
{
  DsEngine *engine = ev->owner;
  DsSlot *slot = ev->slot;
  DsSlotDone done;
  gint64 file_id;
  gboolean current;

  if (ev->kind == DS_EV_FATAL) {
    GST_ERROR ("pipeline failed: %s", ev->text);
    ds_shim_emit_fatal (engine->shim, ev->text);
    engine->exit_code = 1;
    g_main_loop_quit (engine->loop);
    return;
  }

  GST_LOG ("slot %u: event %d gen %" G_GUINT64_FORMAT, ev->index, ev->kind, ev->generation);
  g_mutex_lock (&slot->lock);
  current = ds_slot_call_is_current (ev, slot->book.generation, slot->book.phase,
      DS_SLOT_PHASES_ACTIVE);
  file_id = slot->book.file_id;
  if (!current) {
    g_mutex_unlock (&slot->lock);
    GST_DEBUG ("slot %u: stale event %d dropped", ev->index, ev->kind);
    return;
  }

  if (slot->live.active && (ev->kind == DS_EV_EOS || ev->kind == DS_EV_ERROR ||
          ev->kind == DS_EV_REFUSED)) {
    g_mutex_unlock (&slot->lock);
    live_lost (engine, slot, ev->kind == DS_EV_EOS ? "end of stream" : ev->text,
        ev->kind == DS_EV_REFUSED);
    return;
  }

  switch (ev->kind) {
    case DS_EV_STARTED:
      g_mutex_unlock (&slot->lock);
      ds_shim_emit_file_started (engine->shim, (gint) ev->index, file_id, ev->mono_ns);
      return;

    case DS_EV_RESUMED: {
      DsLiveResume r = slot->resume;

      g_mutex_unlock (&slot->lock);
      GST_INFO ("slot %u: stream resumed after %" G_GINT64_FORMAT " ms", ev->index, r.down_ms);
      ds_shim_emit_stream_resumed (engine->shim, (gint) ev->index, file_id, r.down_ms,
          r.attempts, r.tracker_kept);
      return;
    }

    case DS_EV_EOS:
    case DS_EV_ERROR:
    case DS_EV_REFUSED: /* of a file: cannot be, taken as an error */
      /* Every frame was written as it was counted: the file is done at its end. */
      ds_slot_book_end (&slot->book, ev->kind == DS_EV_EOS ? NULL : ev->text, &done);
      g_mutex_unlock (&slot->lock);
      slot_finish (slot, &done);
      return;

    case DS_EV_FATAL:
      break;
  }
  g_mutex_unlock (&slot->lock);
}

/* ---------- engine vtable ---------- */

/* The file's path was checked off the main loop (ds_path_check_start): a local path
 * that is not a regular file (a FIFO would block the main loop in open()) or that did
 * not answer (a hung mount) fails the file; anything else plays. */
static void
on_path_checked (const DsSlotCall *call)
{
  DsEngine *engine = call->owner;
  DsSlot *slot = call->slot;
  gboolean current;

  g_mutex_lock (&slot->lock);
  current = ds_slot_call_is_current (call, slot->book.generation, slot->book.phase,
      DS_SLOT_PHASES_ACTIVE);
  if (current) {
    slot->checking = FALSE;
    slot->play_mono_ns = mono_now_ns ();
  }
  g_mutex_unlock (&slot->lock);
  if (!current)
    return;
  if (call->text != NULL) {
    on_event (&(DsSlotCall) { .owner = engine, .slot = slot, .index = slot->index,
        .generation = call->generation, .kind = DS_EV_ERROR, .text = call->text });
    return;
  }
  slot_start (engine, slot, call->generation, ds_live_uri_is_live (slot->uri));
}

static gboolean
engine_play (gpointer data, const DsPlayRequest *req, GError **error)
{
  DsEngine *engine = data;
  DsSlot *slot = &engine->slots[req->slot];
  gboolean live = ds_live_uri_is_live (req->uri);
  guint64 gen;

  g_mutex_lock (&slot->lock);
  if (!ds_slot_book_begin (&slot->book, req->file_id, req->new_camera, req->output_path,
          error)) {
    g_mutex_unlock (&slot->lock);
    return FALSE;
  }
  gst_segment_init (&slot->segment, GST_FORMAT_TIME);
  slot->video_linked = FALSE;
  slot->play_mono_ns = mono_now_ns ();
  slot->checking = TRUE;
  g_free (slot->uri);
  slot->uri = g_strdup (req->uri);
  if (live)
    ds_live_begin (&slot->live, slot->play_mono_ns);
  else
    ds_live_end (&slot->live);
  gen = slot->book.generation;
  g_mutex_unlock (&slot->lock);

  GST_DEBUG ("slot %d: play %" G_GINT64_FORMAT " %s", req->slot, req->file_id, req->uri);
  ds_path_check_start (slot->path_check, req->uri, on_path_checked, &(DsSlotCall) {
      .owner = engine, .slot = slot, .index = slot->index, .generation = gen });
  return TRUE;
}

static gboolean
engine_stop (gpointer data, gint index, DsStopResult *out, GError **error)
{
  DsEngine *engine = data;
  DsSlot *slot = &engine->slots[index];
  gboolean playing;
  (void) error;

  if (slot->retry_id != 0) {
    g_source_remove (slot->retry_id);
    slot->retry_id = 0;
  }
  g_mutex_lock (&slot->lock);
  playing = ds_slot_book_busy (&slot->book);
  g_mutex_unlock (&slot->lock);
  if (playing)
    slot_halt (slot); /* its frames are all counted when it is down */
  g_mutex_lock (&slot->lock);
  ds_slot_book_stop (&slot->book, out);
  ds_live_end (&slot->live);
  g_mutex_unlock (&slot->lock);
  return TRUE;
}

static gboolean
engine_reset (gpointer data, gint index, GError **error)
{
  DsEngine *engine = data;
  DsSlot *slot = &engine->slots[index];
  gboolean ok;

  g_mutex_lock (&slot->lock);
  ok = ds_slot_book_reset (&slot->book, error);
  g_mutex_unlock (&slot->lock);
  return ok;
}

static void
engine_progress (gpointer data, gint index, DsSlotProgress *out)
{
  DsEngine *engine = data;
  DsSlot *slot = &engine->slots[index];
  gboolean need_duration;
  guint64 gen;
  gint64 duration;

  g_mutex_lock (&slot->lock);
  need_duration = ds_slot_book_busy (&slot->book) && slot->book.duration_ns < 0;
  gen = slot->book.generation;
  g_mutex_unlock (&slot->lock);
  /* Asked upstream once per file, outside the lock; the demuxer answers at once. */
  if (need_duration && gst_pad_peer_query_duration (slot->sinkpad, GST_FORMAT_TIME, &duration)) {
    g_mutex_lock (&slot->lock);
    if (slot->book.generation == gen)
      ds_slot_book_set_duration (&slot->book, duration);
    g_mutex_unlock (&slot->lock);
  }
  g_mutex_lock (&slot->lock);
  ds_slot_book_progress (&slot->book, out);
  ds_live_progress (&slot->live, mono_now_ns (), &out->live);
  g_mutex_unlock (&slot->lock);
}

static void
engine_shutdown (gpointer data)
{
  DsEngine *engine = data;

  GST_INFO ("shutdown requested");
  g_main_loop_quit (engine->loop);
}

static const DsEngineVTable engine_vtable = {
  .name = "gst",
  .version = DS_VERSION,
  .play = engine_play,
  .stop = engine_stop,
  .reset = engine_reset,
  .progress = engine_progress,
  .shutdown = engine_shutdown,
};

/* ---------- setup ---------- */

static gboolean
engine_build (DsEngine *engine, GError **error)
{
  GstBus *bus;

  engine->pipeline = gst_pipeline_new ("ds-gst-engine");
  engine->slots = g_new0 (DsSlot, engine->config->n_slots);
  for (guint i = 0; i < engine->config->n_slots; i++) {
    DsSlot *slot = &engine->slots[i];
    gchar *name;

    slot->engine = engine;
    slot->index = i;
    g_mutex_init (&slot->lock);
    ds_slot_book_init (&slot->book, i);
    gst_segment_init (&slot->segment, GST_FORMAT_TIME);
    name = g_strdup_printf ("slot%u-dec", i);
    slot->dec = gst_element_factory_make ("uridecodebin", name);
    g_free (name);
    name = g_strdup_printf ("slot%u-sink", i);
    slot->sink = gst_element_factory_make ("fakesink", name);
    g_free (name);
    if (slot->dec == NULL || slot->sink == NULL) {
      g_set_error (error, DS_SLOT_ERROR, DS_SLOT_ERROR_PIPELINE,
          "missing GStreamer element %s", slot->dec == NULL ? "uridecodebin" : "fakesink");
      return FALSE;
    }
    /* async=false: an idle slot's sink must not hold the pipeline out of PLAYING. */
    g_object_set (slot->sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE,
        NULL);
    /* The pipeline never changes a decoder's state; the slot does. */
    gst_element_set_locked_state (slot->dec, TRUE);
    ds_slot_tag_element (slot->dec, i);
    ds_slot_tag_element (slot->sink, i);
    gst_bin_add_many (GST_BIN (engine->pipeline), slot->dec, slot->sink, NULL);
    slot->sinkpad = gst_element_get_static_pad (slot->sink, "sink");
    gst_pad_add_probe (slot->sinkpad,
        GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
        GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_sink_probe, slot, NULL);
    g_signal_connect (slot->dec, "pad-added", G_CALLBACK (on_pad_added), slot);
    g_signal_connect (slot->dec, "no-more-pads", G_CALLBACK (on_no_more_pads), slot);
    slot->opts = &engine->config->live[i];
    /* rtspsrc takes the slot's [sourceK] options (select-rtp-protocol, latency). */
    g_signal_connect (slot->dec, "source-setup", G_CALLBACK (ds_slot_on_source_setup),
        (gpointer) slot->opts);
    slot->path_check = ds_path_check_new (engine->context, DS_PATH_CHECK_TIMEOUT_MS,
        ds_path_check_local, NULL);
  }
  g_signal_connect (engine->pipeline, "deep-element-added", G_CALLBACK (on_deep_element_added),
      engine);
  bus = gst_element_get_bus (engine->pipeline);
  gst_bus_set_sync_handler (bus, on_bus_sync, engine, NULL);
  gst_object_unref (bus);

  if (gst_element_set_state (engine->pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    g_set_error (error, DS_SLOT_ERROR, DS_SLOT_ERROR_PIPELINE, "pipeline refused to start");
    return FALSE;
  }
  return TRUE;
}

static void
engine_teardown (DsEngine *engine)
{
  if (engine->slots != NULL) {
    for (guint i = 0; i < engine->config->n_slots; i++) {
      DsSlot *slot = &engine->slots[i];
      if (slot->retry_id != 0)
        g_source_remove (slot->retry_id);
      slot->retry_id = 0;
      if (slot->dec != NULL)
        gst_element_set_state (slot->dec, GST_STATE_NULL);
    }
  }
  if (engine->pipeline != NULL) {
    GstBus *bus = gst_element_get_bus (engine->pipeline);

    gst_element_set_state (engine->pipeline, GST_STATE_NULL);
    /* Whatever is posted from here on is dropped, not queued. */
    gst_bus_set_flushing (bus, TRUE);
    gst_bus_set_sync_handler (bus, NULL, NULL, NULL);
    gst_object_unref (bus);
  }
  if (engine->slots != NULL) {
    for (guint i = 0; i < engine->config->n_slots; i++) {
      DsSlot *slot = &engine->slots[i];
      ds_path_check_free (slot->path_check);
      ds_slot_book_clear (&slot->book);
      g_free (slot->uri);
      if (slot->sinkpad != NULL)
        gst_object_unref (slot->sinkpad);
      g_mutex_clear (&slot->lock);
    }
  }
  g_clear_pointer (&engine->pipeline, gst_object_unref);
  g_free (engine->slots);
  engine->slots = NULL;
}

static gboolean
on_signal (gpointer data)
{
  DsEngine *engine = data;

  GST_INFO ("signal: stopping");
  g_main_loop_quit (engine->loop);
  return G_SOURCE_CONTINUE;
}

/* An integer setting from the environment: unset or empty means the default; anything
 * else must be a decimal integer in min..max. */
static gboolean
env_int (const gchar *name, gint64 def, gint64 min, gint64 max, gint64 *out, GError **error)
{
  const gchar *text = g_getenv (name);
  GError *err = NULL;

  *out = def;
  if (text == NULL || *text == '\0')
    return TRUE;
  if (!g_ascii_string_to_signed (text, 10, min, max, out, &err)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
        "%s: expected an integer in %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT ", got \"%s\"",
        name, min, max, text);
    g_error_free (err);
    return FALSE;
  }
  return TRUE;
}

int
main (int argc, char **argv)
{
  gchar *cfg_file = NULL, *config = NULL, **input_uris = NULL;
  gboolean tiled = FALSE, version = FALSE, version_all = FALSE;
  GOptionEntry entries[] = {
    { "cfg-file", 'c', 0, G_OPTION_ARG_FILENAME, &cfg_file, "deepstream-app config file", "FILE" },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "same as --cfg-file", "FILE" },
    { "input-uri", 'i', 0, G_OPTION_ARG_STRING_ARRAY, &input_uris, "ignored (deepstream-app)", "URI" },
    { "tiledtext", 't', 0, G_OPTION_ARG_NONE, &tiled, "ignored (deepstream-app)", NULL },
    { "version", 'v', 0, G_OPTION_ARG_NONE, &version, "print the version", NULL },
    { "version-all", 0, 0, G_OPTION_ARG_NONE, &version_all, "print the versions", NULL },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  GOptionContext *ctx;
  GError *err = NULL;
  DsEngine engine = { 0 };
  const gchar *socket_path;
  guint sig_term, sig_int;
  int rc = 2;

  /* Streaming threads come and go with every file; with glibc's default of up to 8
   * arenas per core their heaps fragment and RSS creeps up in an always-on process.
   * Two arenas keep it flat (MALLOC_ARENA_MAX still overrides). */
  if (g_getenv ("MALLOC_ARENA_MAX") == NULL)
    mallopt (M_ARENA_MAX, 2);
  /* stdout is unused (docs/engine-protocol.md): every log line goes to stderr. */
  g_log_writer_default_set_use_stderr (TRUE);
  ctx = g_option_context_new ("- plain GStreamer analysis engine");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  if (!g_option_context_parse (ctx, &argc, &argv, &err)) {
    g_printerr ("ds-gst-engine: %s\n", err->message);
    goto out;
  }
  if (version || version_all) {
    g_print ("ds-gst-engine %s (%s)\n", DS_VERSION, gst_version_string ());
    rc = 0;
    goto out;
  }
  if (cfg_file == NULL)
    cfg_file = g_steal_pointer (&config);
  if (cfg_file == NULL) {
    g_printerr ("ds-gst-engine: missing -c <config>\n");
    goto out;
  }
  socket_path = g_getenv ("DS_CONTROL_SOCKET");
  if (socket_path == NULL || *socket_path == '\0') {
    g_printerr ("ds-gst-engine: DS_CONTROL_SOCKET is not set\n");
    goto out;
  }
  engine.config = ds_config_load (cfg_file, &err);
  if (engine.config == NULL) {
    g_printerr ("ds-gst-engine: config %s: %s\n", cfg_file, err->message);
    goto out;
  }
  GST_DEBUG_CATEGORY_INIT (ds_gst_engine_debug, "dsgstengine", 0, "ds-gst-engine");

  engine.context = g_main_context_default ();
  {
    gint64 stall_ms, threads;

    if (!env_int ("DS_GST_STALL_TIMEOUT_MS", DS_DEFAULT_STALL_MS, 1, DS_MAX_STALL_MS,
            &stall_ms, &err) ||
        !env_int ("DS_GST_DECODER_THREADS", 1, 0, 64, &threads, &err)) {
      g_printerr ("ds-gst-engine: %s\n", err->message);
      goto out;
    }
    engine.stall_ns = stall_ms * G_GINT64_CONSTANT (1000000);
    engine.decoder_threads = (gint) threads;
  }
  engine.loop = g_main_loop_new (engine.context, FALSE);
  engine.shim = ds_shim_new (&engine_vtable, &engine, engine.config->n_slots,
      engine.config->path, (const gint *) (gpointer) engine.config->gpu_ids->data,
      engine.config->gpu_ids->len);
  if (!ds_shim_start (engine.shim, socket_path, &err)) {
    g_printerr ("ds-gst-engine: control socket %s: %s\n", socket_path, err->message);
    goto out;
  }
  sig_term = g_unix_signal_add (SIGTERM, on_signal, &engine);
  sig_int = g_unix_signal_add (SIGINT, on_signal, &engine);

  rc = 1;
  if (!engine_build (&engine, &err)) {
    g_printerr ("ds-gst-engine: %s\n", err->message);
  } else {
    GST_INFO ("%u slots ready, control socket %s", engine.config->n_slots, socket_path);
    ds_shim_set_ready (engine.shim);
    engine.watchdog_id = g_timeout_add (DS_WATCHDOG_PERIOD_MS, on_watchdog, &engine);
    g_main_loop_run (engine.loop);
    g_source_remove (engine.watchdog_id);
    rc = engine.exit_code;
  }
  g_source_remove (sig_term);
  g_source_remove (sig_int);

out:
  engine_teardown (&engine);
  ds_shim_free (engine.shim);
  if (engine.loop != NULL)
    g_main_loop_unref (engine.loop);
  ds_config_free (engine.config);
  g_clear_error (&err);
  g_option_context_free (ctx);
  g_free (cfg_file);
  g_free (config);
  g_strfreev (input_uris);
  gst_deinit ();
  return rc;
}
