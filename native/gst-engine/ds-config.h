/* DsConfig: what ds-gst-engine needs from a deepstream-app config file. */
#ifndef DS_CONFIG_H
#define DS_CONFIG_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  gchar *path;      /* absolute */
  guint n_slots;    /* enabled [sourceK] groups; type=3 counts num-sources */
  GArray *gpu_ids;  /* gint, distinct, ascending; never empty ([0] by default) */
} DsConfig;

/* Reads path as a GKeyFile. Fails on an unreadable file, bad syntax, a malformed
 * enable/type/num-sources/gpu-id value, or no enabled source. */
DsConfig *ds_config_load (const gchar *path, GError **error);
void ds_config_free (DsConfig *config);

G_END_DECLS

#endif /* DS_CONFIG_H */
