/* DsSlotOutput: see ds-slot-output.h. */
#include "ds-slot-output.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
ds_slot_output_clear (DsSlotOutput *out)
{
  ds_slot_output_close (out, NULL);
  g_free (out->path);
  memset (out, 0, sizeof (*out));
}

static FILE *
open_regular (const gchar *path, GError **error)
{
  const gchar *reason = NULL;
  struct stat st;
  FILE *f;
  int fd, flags, e = 0;

  /* O_NONBLOCK: a FIFO would block the main loop in open() until a reader comes (without
   * a reader it fails with ENXIO). No O_TRUNC until the file is known to be regular. */
  fd = open (path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0666);
  if (fd < 0) {
    e = errno;
    if (e == ENXIO || e == EISDIR)
      reason = "not a regular file";
  } else if (fstat (fd, &st) != 0) {
    e = errno;
  } else if (!S_ISREG (st.st_mode)) {
    e = EINVAL;
    reason = "not a regular file";
  } else if (ftruncate (fd, 0) != 0 || (flags = fcntl (fd, F_GETFL)) < 0 ||
      fcntl (fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    e = errno;
  } else if ((f = fdopen (fd, "w")) != NULL) {
    return f;
  } else {
    e = errno;
  }
  if (fd >= 0)
    close (fd);
  g_set_error (error, DS_SLOT_ERROR, DS_SLOT_ERROR_OUTPUT, "cannot open output %s: %s",
      path, reason != NULL ? reason : g_strerror (e));
  return NULL;
}

gboolean
ds_slot_output_open (DsSlotOutput *out, const gchar *path, GError **error)
{
  FILE *f;

  if (path == NULL || path[0] == '\0') {
    ds_slot_output_clear (out);
    return TRUE;
  }
  f = open_regular (path, error);
  if (f == NULL)
    return FALSE;
  ds_slot_output_clear (out);
  out->file = f;
  out->path = g_strdup (path);
  return TRUE;
}

gboolean
ds_slot_output_writable (const DsSlotOutput *out)
{
  return out->file != NULL && out->errsv == 0;
}

static void
keep_errno (DsSlotOutput *out)
{
  if (out->errsv == 0)
    out->errsv = errno != 0 ? errno : EIO;
}

gboolean
ds_slot_output_write (DsSlotOutput *out, const gchar *data, gsize len)
{
  if (!ds_slot_output_writable (out))
    return FALSE;
  errno = 0;
  if (fwrite (data, 1, len, out->file) != len)
    keep_errno (out);
  return out->errsv == 0;
}

gboolean
ds_slot_output_printf (DsSlotOutput *out, const gchar *format, ...)
{
  va_list args;
  int n;

  if (!ds_slot_output_writable (out))
    return FALSE;
  errno = 0;
  va_start (args, format);
  n = vfprintf (out->file, format, args);
  va_end (args);
  if (n < 0)
    keep_errno (out);
  return out->errsv == 0;
}

gboolean
ds_slot_output_close (DsSlotOutput *out, GError **error)
{
  if (out->file == NULL)
    return TRUE;
  /* fclose flushes: a buffered write that fails shows up here first. */
  errno = 0;
  if (fclose (out->file) != 0)
    keep_errno (out);
  out->file = NULL;
  if (out->errsv == 0)
    return TRUE;
  g_set_error (error, DS_SLOT_ERROR, DS_SLOT_ERROR_OUTPUT, "cannot write output %s: %s",
      out->path, g_strerror (out->errsv));
  return FALSE;
}
