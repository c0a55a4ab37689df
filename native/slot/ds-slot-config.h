/* ds-slot-config: what both engines read from a deepstream-app config file alike: its
 * slots, numbered as deepstream-app numbers its sources, each with its live-source
 * options; and the GPU ids `hello` reports. GLib only (GKeyFile). */
#ifndef DS_SLOT_CONFIG_H
#define DS_SLOT_CONFIG_H

#include <glib.h>

#include "ds-live.h"

G_BEGIN_DECLS

/* deepstream-app's MAX_SOURCE_BINS. */
#define DS_SLOT_MAX 1024

/* An integer key; absent → def. FALSE with `[group] key: why` when it is not an integer. */
gboolean ds_slot_config_int (GKeyFile *kf, const gchar *group, const gchar *key, gint def,
    gint *out, GError **error);

/* The slots of kf, as deepstream-app numbers its sources: the [sourceK] groups (K a
 * number) whose `enable` is not 0, in file order; a type=3 (multi-URI) group stands for
 * num-sources slots (1..1024), any other for one. Returns one DsLiveOptions per slot, from
 * its group (select-rtp-protocol 0 or 4, latency 0..60000, rtsp-reconnect-interval-sec
 * 0..3600, rtsp-reconnect-attempts -1..1000000, live-stall-sec 1..3600; an absent key is
 * the default), possibly none. NULL with error on a malformed enable/type/num-sources or
 * live-source key (`[group] key: why`), or more than DS_SLOT_MAX slots (`<N> sources, at
 * most 1024`). */
GArray *ds_slot_config_sources (GKeyFile *kf, GError **error);

/* Distinct GPU ids in ascending order ([0] when there are none), as gint. */
GArray *ds_slot_gpu_ids (const guint *ids, guint n_ids);

G_END_DECLS

#endif /* DS_SLOT_CONFIG_H */
