/* Properties an element under an NVIDIA name accepts and keeps but that change nothing in
 * the stand-in. deepstream-app sets them with g_object_set, which stops at the first
 * name the class does not have, so every property the 7.1 app may set must exist, with
 * the type the app passes. Test code, see ../README.md. */
#ifndef DS_STANDIN_PROPS_H
#define DS_STANDIN_PROPS_H

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct {
  const gchar *name;
  GType type;   /* G_TYPE_UINT, INT, BOOLEAN, STRING, POINTER, UINT64 */
} DsStandinProp;

typedef struct {
  const DsStandinProp *props;
  guint n;
  guint first_id;
  GValue *values;
} DsStandinProps;

/* Installs props[0..n) with ids first_id, first_id + 1, … */
void ds_standin_props_install (GObjectClass *klass, guint first_id, const DsStandinProp *props,
    guint n);
void ds_standin_props_init (DsStandinProps *store, guint first_id, const DsStandinProp *props,
    guint n);
void ds_standin_props_clear (DsStandinProps *store);
/* FALSE when id is not one of the store's. */
gboolean ds_standin_props_set (DsStandinProps *store, guint id, const GValue *value);
gboolean ds_standin_props_get (DsStandinProps *store, guint id, GValue *value);

G_END_DECLS

#endif
