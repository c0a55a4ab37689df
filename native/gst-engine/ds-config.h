/* DsConfig: what ds-gst-engine needs from a deepstream-app config file. */
#ifndef DS_CONFIG_H
#define DS_CONFIG_H

#include <glib.h>

#include "ds-live.h"

G_BEGIN_DECLS

typedef struct {
  gchar *path;      /* absolute */
  guint n_slots;    /* enabled [sourceK] groups; type=3 counts num-sources */
  GArray *gpu_ids;  /* gint, distinct, ascending; never empty ([0] by default) */
  DsLiveOptions *live; /* n_slots: each slot's live-source options, from its group */
} DsConfig;

/* Reads path as a GKeyFile. Fails on an unreadable file, bad syntax, a malformed
 * enable/type/num-sources/gpu-id value or live-source key (select-rtp-protocol 0 or 4,
 * latency 0..60000, rtsp-reconnect-interval-sec 0..3600, rtsp-reconnect-attempts
 * -1..1000000, live-stall-sec 1..3600), or no enabled source. */
DsConfig *ds_config_load (const gchar *path, GError **error);
void ds_config_free (DsConfig *config);

G_END_DECLS

#endif /* DS_CONFIG_H */
