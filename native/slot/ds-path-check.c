/* DsPathCheck: see ds-path-check.h. */
#include "ds-path-check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
ds_path_check_new (GMainContext *context, guint timeout_ms, DsPathCheckFunc func,
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
