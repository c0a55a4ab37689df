/* ds-shim: the JSON-lines control socket shared by every engine.
 *
 * The shim owns the socket, parsing, validation and replies (docs/engine-protocol.md).
 * An engine plugs in through DsEngineVTable; every callback runs on the GLib main
 * context the shim was started on and must not block. The shim knows nothing of
 * cameras, queues or DeepStream. */
#ifndef DS_SHIM_H
#define DS_SHIM_H

#include <glib.h>

G_BEGIN_DECLS

#define DS_SHIM_PROTOCOL_VERSION 1
#define DS_SHIM_MAX_LINE (1024 * 1024)

typedef struct _DsShim DsShim;

typedef enum {
  DS_SLOT_IDLE = 0,
  DS_SLOT_PLAYING = 1,
} DsSlotState;

/* A live source's health (docs/engine-protocol.md, "Live sources"). */
typedef struct {
  gboolean active;          /* the slot plays a live uri: `live` is reported */
  const gchar *state;       /* "connecting", "playing" or "reconnecting" (static) */
  gdouble fps;              /* frames/s over the last ~2 s */
  gint64 last_frame_age_ms; /* -1 = no frame yet */
  guint64 reconnects;       /* outages that ended in a resumed stream */
} DsLiveProgress;

typedef struct {
  DsSlotState state;
  gint64 file_id;       /* meaningful when has_file */
  gboolean has_file;
  gint64 position_ns;   /* -1 = unknown */
  gint64 duration_ns;   /* -1 = unknown */
  guint64 frames;       /* frames of the current (or last) file */
  guint64 camera_frames;/* frames since the last camera reset */
  DsLiveProgress live;
} DsSlotProgress;

typedef struct {
  gint slot;
  gint64 file_id;
  const gchar *uri;
  gboolean new_camera;
  const gchar *output_path; /* NULL = no per-file output */
} DsPlayRequest;

typedef struct {
  gboolean was_playing;
  gint64 file_id;
  guint64 frames;
} DsStopResult;

/* Callbacks an engine provides. The shim validates slot ranges, busy/idle state is the
 * engine's to check (it owns the slots): return FALSE and set error to refuse. */
typedef struct {
  const gchar *name;     /* "gst" or "deepstream" */
  const gchar *version;
  gboolean (*play)     (gpointer engine, const DsPlayRequest *req, GError **error);
  gboolean (*stop)     (gpointer engine, gint slot, DsStopResult *out, GError **error);
  gboolean (*reset)    (gpointer engine, gint slot, GError **error);
  void     (*progress) (gpointer engine, gint slot, DsSlotProgress *out);
  /* Called after the shutdown reply is flushed: stop the pipeline and quit the loop. */
  void     (*shutdown) (gpointer engine);
} DsEngineVTable;

/* config_path must be absolute; gpu_ids may be NULL (reports [0]). */
DsShim  *ds_shim_new   (const DsEngineVTable *vtable, gpointer engine, guint n_slots,
                        const gchar *config_path, const gint *gpu_ids, guint n_gpu_ids);
/* Binds and listens on socket_path (0600, stale file replaced) on the thread-default
 * main context. */
gboolean ds_shim_start (DsShim *shim, const gchar *socket_path, GError **error);
/* The pipeline is built: sends `ready` to the client (now and on every new connection). */
void     ds_shim_set_ready (DsShim *shim);

/* Events; safe only on the shim's main context. An event emitted from inside a vtable
 * callback is sent after that request's reply. Without a client, events are dropped. */
void ds_shim_emit_file_started (DsShim *shim, gint slot, gint64 file_id, gint64 mono_ns);
void ds_shim_emit_file_done    (DsShim *shim, gint slot, gint64 file_id, guint64 frames,
                                guint64 camera_frames, gint64 mono_ns);
void ds_shim_emit_file_error   (DsShim *shim, gint slot, gint64 file_id, const gchar *error);
void ds_shim_emit_fatal        (DsShim *shim, const gchar *error);
/* Live sources: retry_in_ms is sent only when will_retry. */
void ds_shim_emit_stream_lost  (DsShim *shim, gint slot, gint64 file_id, const gchar *reason,
                                gboolean will_retry, guint attempt, gint64 retry_in_ms);
void ds_shim_emit_stream_resumed (DsShim *shim, gint slot, gint64 file_id, gint64 down_ms,
                                  guint attempts, gboolean tracker_kept);

/* Closes the client and the listener, removes the socket file. */
void ds_shim_free (DsShim *shim);

G_END_DECLS

#endif /* DS_SHIM_H */
