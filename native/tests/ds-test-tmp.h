/* A scratch directory for the native unit tests (header only: each test is one file). */
#ifndef DS_TEST_TMP_H
#define DS_TEST_TMP_H

#include <glib.h>
#include <glib/gstdio.h>

/* A new empty directory named after template (with XXXXXX). */
static inline gchar *
ds_test_tmp_new (const gchar *template_name)
{
  gchar *dir = g_dir_make_tmp (template_name, NULL);

  g_assert_nonnull (dir);
  return dir;
}

/* Removes the files in dir, dir itself, and frees the name. */
static inline void
ds_test_tmp_free (gchar *dir)
{
  GDir *d = g_dir_open (dir, 0, NULL);
  const gchar *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL) {
    gchar *p = g_build_filename (dir, name, NULL);
    g_unlink (p);
    g_free (p);
  }
  if (d != NULL)
    g_dir_close (d);
  g_rmdir (dir);
  g_free (dir);
}

static inline gchar *
ds_test_read_file (const gchar *path)
{
  gchar *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

#endif /* DS_TEST_TMP_H */
