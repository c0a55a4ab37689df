/* ds-slot-config: see ds-slot-config.h. */
#include "ds-slot-config.h"

#include <string.h>

#define DS_SOURCE_TYPE_MULTI_URI 3 /* NV_DS_SOURCE_URI_MULTIPLE */

/* [sourceK], K a decimal number: deepstream-app refuses any other [source…] group. */
static gboolean
is_source_group (const gchar *group)
{
  const gchar *digits = group + strlen ("source");
  gchar *end = NULL;
  guint64 v;

  if (!g_str_has_prefix (group, "source") || !g_ascii_isdigit (*digits))
    return FALSE;
  v = g_ascii_strtoull (digits, &end, 10);
  return *end == '\0' && v <= G_MAXUINT;
}

gboolean
ds_slot_config_int (GKeyFile *kf, const gchar *group, const gchar *key, gint def, gint *out,
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

/* An integer key within min..max; absent → def. */
static gboolean
key_in_range (GKeyFile *kf, const gchar *group, const gchar *key, gint def, gint min,
    gint max, gint *out, GError **error)
{
  if (!ds_slot_config_int (kf, group, key, def, out, error))
    return FALSE;
  if (*out < min || *out > max) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
        "[%s] %s: %d out of range (%d..%d)", group, key, *out, min, max);
    return FALSE;
  }
  return TRUE;
}

/* A slot's live-source options from its group: select-rtp-protocol 0 or 4, latency
 * 0..60000, rtsp-reconnect-interval-sec 0..3600, rtsp-reconnect-attempts -1..1000000,
 * live-stall-sec 1..3600; an absent key is the default (ds_live_options_init). */
static gboolean
live_options (GKeyFile *kf, const gchar *group, DsLiveOptions *opts, GError **error)
{
  DsLiveOptions def;
  gint interval, stall;

  ds_live_options_init (&def);
  if (!key_in_range (kf, group, "select-rtp-protocol", def.rtp_protocols, 0, 4,
          &opts->rtp_protocols, error) ||
      !key_in_range (kf, group, "latency", def.latency_ms, 0, 60000, &opts->latency_ms,
          error) ||
      !key_in_range (kf, group, "rtsp-reconnect-interval-sec", def.retry_ms / 1000, 0, 3600,
          &interval, error) ||
      !key_in_range (kf, group, "rtsp-reconnect-attempts", def.attempts, -1, 1000000,
          &opts->attempts, error) ||
      !key_in_range (kf, group, "live-stall-sec", def.stall_ms / 1000, 1, 3600, &stall,
          error))
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

GArray *
ds_slot_config_sources (GKeyFile *kf, GError **error)
{
  gchar **groups = g_key_file_get_groups (kf, NULL);
  GArray *slots = g_array_new (FALSE, FALSE, sizeof (DsLiveOptions));
  guint n_slots = 0;

  for (gchar **g = groups; *g != NULL; g++) {
    DsLiveOptions opts;
    gint enable, type, num;

    if (!is_source_group (*g))
      continue;
    if (!ds_slot_config_int (kf, *g, "enable", 0, &enable, error))
      goto fail;
    if (enable == 0)
      continue; /* deepstream-app skips it; without the key a source is off */
    if (!ds_slot_config_int (kf, *g, "type", 0, &type, error) ||
        !ds_slot_config_int (kf, *g, "num-sources", 1, &num, error) ||
        !live_options (kf, *g, &opts, error))
      goto fail;
    if (type != DS_SOURCE_TYPE_MULTI_URI)
      num = 1;
    else if (num < 1 || num > DS_SLOT_MAX) {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
          "[%s] num-sources: %d out of range (1..%d)", *g, num, DS_SLOT_MAX);
      goto fail;
    }
    n_slots += (guint) num;
    for (gint k = 0; k < num && slots->len < DS_SLOT_MAX; k++)
      g_array_append_val (slots, opts);
  }
  if (n_slots > DS_SLOT_MAX) {
    g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
        "%u sources, at most %d", n_slots, DS_SLOT_MAX);
    goto fail;
  }
  g_strfreev (groups);
  return slots;

fail:
  g_strfreev (groups);
  g_array_unref (slots);
  return NULL;
}

static gint
cmp_int (gconstpointer a, gconstpointer b)
{
  gint x = *(const gint *) a, y = *(const gint *) b;
  return (x > y) - (x < y);
}

GArray *
ds_slot_gpu_ids (const guint *ids, guint n_ids)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (gint));

  for (guint i = 0; i < n_ids; i++) {
    gint id = (gint) MIN (ids[i], (guint) G_MAXINT);
    gboolean known = FALSE;
    for (guint j = 0; j < out->len && !known; j++)
      known = g_array_index (out, gint, j) == id;
    if (!known)
      g_array_append_val (out, id);
  }
  if (out->len == 0) {
    gint zero = 0;
    g_array_append_val (out, zero);
  }
  g_array_sort (out, cmp_int);
  return out;
}
