/* DsConfig: see ds-config.h. The slots are read as the adapter reads them
 * (ds_slot_config_sources); the GPU ids from every enabled group's gpu-id. */
#include "ds-config.h"

#include "ds-slot-config.h"

DsConfig *
ds_config_load (const gchar *path, GError **error)
{
  GKeyFile *kf = g_key_file_new ();
  DsConfig *cfg = NULL;
  gchar **groups = NULL;
  GArray *gpus = g_array_new (FALSE, FALSE, sizeof (guint));
  GArray *live = NULL;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, error))
    goto out;
  if ((live = ds_slot_config_sources (kf, error)) == NULL)
    goto out;
  if (live->len == 0) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
        "%s: no enabled [sourceK] group", path);
    goto out;
  }
  groups = g_key_file_get_groups (kf, NULL);
  for (gchar **g = groups; *g != NULL; g++) {
    gint enable, gpu;
    guint id;

    /* deepstream-app ignores a group whose enable is 0; one without `enable` counts
     * only for groups that never have the key (streammux, gies...). */
    if (!ds_slot_config_int (kf, *g, "enable", -1, &enable, error))
      goto out;
    if (enable == 0 || !g_key_file_has_key (kf, *g, "gpu-id", NULL))
      continue;
    if (!ds_slot_config_int (kf, *g, "gpu-id", 0, &gpu, error))
      goto out;
    if (gpu < 0) {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
          "[%s] gpu-id: %d is negative", *g, gpu);
      goto out;
    }
    id = (guint) gpu;
    g_array_append_val (gpus, id);
  }
  cfg = g_new0 (DsConfig, 1);
  cfg->path = g_canonicalize_filename (path, NULL);
  cfg->n_slots = live->len;
  cfg->gpu_ids = ds_slot_gpu_ids ((const guint *) (gpointer) gpus->data, gpus->len);
  cfg->live = (DsLiveOptions *) (gpointer) g_array_free (g_steal_pointer (&live), FALSE);

out:
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
