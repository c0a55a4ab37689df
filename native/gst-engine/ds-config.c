/* DsConfig: see ds-config.h. Mirrors deepstream-app: a [sourceK] group counts only
 * with enable=1; type=3 (multi-URI) expands to num-sources slots. */
#include "ds-config.h"

#include <string.h>

#define DS_SOURCE_TYPE_MULTI_URI 3

static gboolean
source_index (const gchar *group, guint *index)
{
  const gchar *digits = group + strlen ("source");
  gchar *end = NULL;
  guint64 v;

  if (!g_str_has_prefix (group, "source") || !g_ascii_isdigit (*digits))
    return FALSE;
  v = g_ascii_strtoull (digits, &end, 10);
  if (*end != '\0' || v > G_MAXUINT)
    return FALSE;
  *index = (guint) v;
  return TRUE;
}

/* An integer key; absent → def. FALSE with error when present but not an integer. */
static gboolean
get_int (GKeyFile *kf, const gchar *group, const gchar *key, gint def, gint *out,
    GError **error)
{
  GError *err = NULL;
  gint v;

  if (!g_key_file_has_key (kf, group, key, NULL)) {
    *out = def;
    return TRUE;
  }
  v = g_key_file_get_integer (kf, group, key, &err);
  if (err != NULL) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
        "[%s] %s: %s", group, key, err->message);
    g_error_free (err);
    return FALSE;
  }
  *out = v;
  return TRUE;
}

static gint
cmp_int (gconstpointer a, gconstpointer b)
{
  gint x = *(const gint *) a, y = *(const gint *) b;
  return (x > y) - (x < y);
}

DsConfig *
ds_config_load (const gchar *path, GError **error)
{
  GKeyFile *kf = g_key_file_new ();
  DsConfig *cfg = NULL;
  gchar **groups = NULL;
  GArray *gpus = g_array_new (FALSE, FALSE, sizeof (gint));
  GArray *live = g_array_new (FALSE, FALSE, sizeof (DsLiveOptions));
  guint n_slots = 0;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, error))
    goto out;
  groups = g_key_file_get_groups (kf, NULL);
  for (gchar **g = groups; *g != NULL; g++) {
    gint enable, gpu, type, num;
    guint index;

    /* deepstream-app ignores a group whose enable is 0; one without `enable` counts
     * only for groups that never have the key (streammux, gies...). */
    if (!get_int (kf, *g, "enable", -1, &enable, error))
      goto out;
    if (enable == 0)
      continue;
    if (source_index (*g, &index)) {
      DsLiveOptions opts;

      if (enable < 0)
        continue; /* a source without enable=1 is off */
      if (!get_int (kf, *g, "type", 0, &type, error) ||
          !get_int (kf, *g, "num-sources", 1, &num, error) ||
          !ds_live_options_parse (kf, *g, &opts, error))
        goto out;
      if (type == DS_SOURCE_TYPE_MULTI_URI) {
        if (num < 1 || num > 1024) {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
              "[%s] num-sources: %d out of range (1..1024)", *g, num);
          goto out;
        }
        n_slots += (guint) num;
      } else {
        num = 1;
        n_slots++;
      }
      for (gint k = 0; k < num && n_slots <= 1024; k++)
        g_array_append_val (live, opts);
    }
    if (g_key_file_has_key (kf, *g, "gpu-id", NULL)) {
      if (!get_int (kf, *g, "gpu-id", 0, &gpu, error))
        goto out;
      if (gpu < 0) {
        g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
            "[%s] gpu-id: %d is negative", *g, gpu);
        goto out;
      }
      g_array_append_val (gpus, gpu);
    }
  }
  if (n_slots == 0) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
        "%s: no enabled [sourceK] group", path);
    goto out;
  }
  if (n_slots > 1024) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
        "%s: %u sources, at most 1024", path, n_slots);
    goto out;
  }
  g_array_sort (gpus, cmp_int);
  for (guint i = 1; i < gpus->len;) {
    if (g_array_index (gpus, gint, i) == g_array_index (gpus, gint, i - 1))
      g_array_remove_index (gpus, i);
    else
      i++;
  }
  if (gpus->len == 0) {
    gint zero = 0;
    g_array_append_val (gpus, zero);
  }
  cfg = g_new0 (DsConfig, 1);
  cfg->path = g_canonicalize_filename (path, NULL);
  cfg->n_slots = n_slots;
  cfg->gpu_ids = g_steal_pointer (&gpus);
  cfg->live = (DsLiveOptions *) (gpointer) g_array_free (g_steal_pointer (&live), FALSE);

out:
  if (gpus != NULL)
    g_array_unref (gpus);
  if (live != NULL)
    g_array_unref (live);
  g_strfreev (groups);
  g_key_file_unref (kf);
  return cfg;
}

void
ds_config_free (DsConfig *config)
{
  if (config == NULL)
    return;
  g_free (config->path);
  g_array_unref (config->gpu_ids);
  g_free (config->live);
  g_free (config);
}
