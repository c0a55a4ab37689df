/* [standin] switches (ds-standin-options.h). Test code, see ../README.md. */
#include "ds-standin-options.h"

#include <stddef.h>

typedef struct {
  const gchar *key;
  gsize offset;
  gboolean boolean;
  guint def;
} Key;

#define OPT(key, field, boolean, def) { key, offsetof (DsStandinOptions, field), boolean, def }

/* Defaults: pessimistic where the closed legacy muxer's behaviour is unknown
 * (eos-needs-flush), documented where it is documented (frames-per-source 0: the
 * legacy rule), as before where a variant is a test's subject (forward-flush,
 * reset-in-order, poison). decoder-create-ms: README.md "decoder-create-ms". */
static const Key keys[] = {
  OPT ("eos-needs-flush", eos_needs_flush, TRUE, 1),
  OPT ("frames-per-source", frames_per_source, FALSE, 0),
  OPT ("forward-flush", forward_flush, TRUE, 0),
  OPT ("reset-in-order", reset_in_order, TRUE, 1),
  OPT ("max-queue", max_queue, FALSE, 2),
  OPT ("batch-copy-ms", batch_copy_ms, FALSE, 0),
  OPT ("decoder-create-ms", decoder_create_ms, FALSE, 100),
  OPT ("poison", poison, TRUE, 0),
  OPT ("max-surfaces", max_surfaces, FALSE, 16),
  OPT ("block-timeout-ms", block_timeout_ms, FALSE, 5000),
  OPT ("hold-ms", hold_ms, FALSE, 0),
  OPT ("wedge-after-frames", wedge_after_frames, FALSE, 0),
};

static void
set (DsStandinOptions *o, const Key *k, guint v)
{
  if (k->boolean)
    G_STRUCT_MEMBER (gboolean, o, k->offset) = v != 0;
  else
    G_STRUCT_MEMBER (guint, o, k->offset) = v;
}

static void
load (DsStandinOptions *o, const gchar *path)
{
  GKeyFile *kf = g_key_file_new ();
  GError *err = NULL;
  gchar **names;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &err))
    g_error ("DeepStream stand-in: DS_STANDIN_CONFIG %s: %s", path, err->message);
  names = g_key_file_get_keys (kf, "standin", NULL, NULL);
  for (gchar **n = names; n != NULL && *n != NULL; n++) {
    const Key *k = NULL;
    gint64 v;
    for (guint i = 0; i < G_N_ELEMENTS (keys) && k == NULL; i++)
      if (g_strcmp0 (keys[i].key, *n) == 0)
        k = &keys[i];
    if (k == NULL)
      g_error ("DeepStream stand-in: %s: unknown key [standin] %s", path, *n);
    v = g_key_file_get_int64 (kf, "standin", *n, &err);
    if (err != NULL || v < 0 || v > G_MAXINT || (k->boolean && v > 1))
      g_error ("DeepStream stand-in: %s: [standin] %s: not a %s", path, *n,
          k->boolean ? "0 or 1" : "count");
    set (o, k, (guint) v);
  }
  g_strfreev (names);
  g_key_file_unref (kf);
}

const DsStandinOptions *
ds_standin_options (void)
{
  static DsStandinOptions options;
  static gsize done;

  if (g_once_init_enter (&done)) {
    const gchar *path = g_getenv ("DS_STANDIN_CONFIG");
    for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
      set (&options, &keys[i], keys[i].def);
    if (path != NULL && path[0] != '\0')
      load (&options, path);
    g_once_init_leave (&done, 1);
  }
  return &options;
}
