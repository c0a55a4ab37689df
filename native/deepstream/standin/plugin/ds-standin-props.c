/* Accepted-and-kept properties (ds-standin-props.h). Test code, see ../README.md. */
#include "ds-standin-props.h"

static GParamSpec *
spec (const DsStandinProp *p)
{
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const gchar *blurb = "accepted and kept; no effect in the DeepStream stand-in";

  switch (p->type) {
    case G_TYPE_UINT:
      return g_param_spec_uint (p->name, p->name, blurb, 0, G_MAXUINT, 0, rw);
    case G_TYPE_INT:
      return g_param_spec_int (p->name, p->name, blurb, G_MININT, G_MAXINT, 0, rw);
    case G_TYPE_BOOLEAN:
      return g_param_spec_boolean (p->name, p->name, blurb, FALSE, rw);
    case G_TYPE_STRING:
      return g_param_spec_string (p->name, p->name, blurb, NULL, rw);
    case G_TYPE_POINTER:
      return g_param_spec_pointer (p->name, p->name, blurb, rw);
    case G_TYPE_UINT64:
      return g_param_spec_uint64 (p->name, p->name, blurb, 0, G_MAXUINT64, 0, rw);
    default:
      g_error ("stand-in property %s: unsupported type %s", p->name, g_type_name (p->type));
  }
  return NULL;
}

void
ds_standin_props_install (GObjectClass *klass, guint first_id, const DsStandinProp *props,
    guint n)
{
  for (guint i = 0; i < n; i++)
    g_object_class_install_property (klass, first_id + i, spec (&props[i]));
}

void
ds_standin_props_init (DsStandinProps *store, guint first_id, const DsStandinProp *props,
    guint n)
{
  store->props = props;
  store->n = n;
  store->first_id = first_id;
  store->values = g_new0 (GValue, n);
  for (guint i = 0; i < n; i++)
    g_value_init (&store->values[i], props[i].type);
}

void
ds_standin_props_clear (DsStandinProps *store)
{
  for (guint i = 0; i < store->n; i++)
    g_value_unset (&store->values[i]);
  g_clear_pointer (&store->values, g_free);
}

gboolean
ds_standin_props_set (DsStandinProps *store, guint id, const GValue *value)
{
  if (id < store->first_id || id >= store->first_id + store->n)
    return FALSE;
  g_value_copy (value, &store->values[id - store->first_id]);
  return TRUE;
}

gboolean
ds_standin_props_get (DsStandinProps *store, guint id, GValue *value)
{
  if (id < store->first_id || id >= store->first_id + store->n)
    return FALSE;
  g_value_copy (&store->values[id - store->first_id], value);
  return TRUE;
}
