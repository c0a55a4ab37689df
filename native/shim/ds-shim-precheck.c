/* ds-shim-precheck: one pass over a request line before json-glib parses it
 * (ds_shim_precheck_line). */
#include "ds-shim-private.h"

#include <string.h>

/* Does the integer in s[0..n) (base 2, 8, 10 or 16; it ends at the first character that is
 * not a digit of the base) lie beyond int64? */
static gboolean
int_token_overflows (const gchar *s, gsize n, guint base, gboolean negative)
{
  const guint64 limit = negative ? (guint64) G_MAXINT64 + 1 : (guint64) G_MAXINT64;
  guint64 v = 0;

  for (gsize k = 0; k < n; k++) {
    gint d = g_ascii_xdigit_value (s[k]);

    if (d < 0 || (guint) d >= base)
      break; /* the parser rejects what follows */
    if (v > (limit - (guint64) d) / base)
      return TRUE;
    v = v * base + (guint64) d;
  }
  return FALSE;
}

static gboolean
is_ident_char (gchar ch)
{
  return g_ascii_isalnum (ch) || ch == '_' || ch == '-';
}

/* Skips a \u escape's hex digits as json-glib's scanner does: up to 4 characters, the
 * first non-hex one included. Returns the index after them; *value gets the code unit. */
static gsize
skip_unichar (const gchar *line, gsize len, gsize i, guint *value)
{
  *value = 0;
  for (gint k = 0; k < 4 && i < len; k++) {
    gint d = g_ascii_xdigit_value (line[i++]);

    if (d < 0)
      break;
    *value |= (guint) d << ((3 - k) * 4);
  }
  return i;
}

/* One pass over a line before json-glib parses it, for what json-glib gets wrong:
 * nesting deeper than DS_SHIM_MAX_DEPTH (its recursive parser would overflow the stack)
 * and integers beyond int64 (it hands back a wrapped value). Returns the error, or NULL;
 * anything else malformed is left to the parser.
 *
 * Strings and comments are skipped exactly as json-glib 1.6's scanner reads them (it also
 * takes 'single-quoted' strings, /comments/ between slashes, $hex, 0x hex, 0b binary and
 * 0-prefixed octal integers): a bracket it would parse must never be taken for text. */
const gchar *
ds_shim_precheck_line (const gchar *line, gsize len)
{
  guint depth = 0;
  gsize i = 0;

  while (i < len) {
    gchar ch = line[i];

    if (ch == '"') {
      for (i++; i < len && line[i] != '"'; ) {
        guint unit;

        if (line[i++] != '\\' || i >= len)
          continue;
        if (line[i++] != 'u' || i >= len || !g_ascii_isxdigit (line[i]))
          continue;
        i = skip_unichar (line, len, i, &unit);
        /* A surrogate: the scanner takes the next two characters as `\u` unseen. */
        if (unit >= 0xd800 && unit <= 0xdfff && i < len && line[i++] == '\\' && i < len &&
            line[i++] == 'u')
          i = skip_unichar (line, len, i, &unit);
      }
      i++;
    } else if (ch == '\'' || ch == '/') {
      const gchar *end = memchr (line + i + 1, ch, len - i - 1);

      i = end != NULL ? (gsize) (end - line) + 1 : len;
    } else if (g_ascii_isalpha (ch) || ch == '_') {
      while (i < len && is_ident_char (line[i]))
        i++;
    } else if (ch == '[' || ch == '{') {
      if (++depth > DS_SHIM_MAX_DEPTH)
        return "malformed JSON: nesting too deep";
      i++;
    } else if (ch == ']' || ch == '}') {
      if (depth > 0)
        depth--;
      i++;
    } else if (g_ascii_isdigit (ch) || ch == '$' || ch == '.') {
      gsize digits = i, k = i;
      guint base = 10;
      gboolean fraction = ch == '.';
      gboolean negative = FALSE;

      if (ch == '$') {
        base = 16;
        digits = i + 1;
      } else if (ch == '0' && i + 1 < len && (line[i + 1] == 'x' || line[i + 1] == 'X')) {
        base = 16;
        digits = i + 2;
      } else if (ch == '0' && i + 1 < len && (line[i + 1] == 'b' || line[i + 1] == 'B')) {
        base = 2;
        digits = i + 2;
      } else if (ch == '0') {
        base = 8;
      }
      for (i = digits; i < len; i++) {
        gchar c = line[i];

        if (c == '.' || (base != 16 && (c == 'e' || c == 'E')))
          fraction = TRUE;
        else if ((c == '+' || c == '-') && base != 16 && i > digits &&
            (line[i - 1] == 'e' || line[i - 1] == 'E'))
          continue;
        else if (!g_ascii_isalnum (c))
          break;
      }
      /* The parser reads `-` as a token of its own, blanks may follow it. */
      while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t' || line[k - 1] == '\r'))
        k--;
      negative = k > 0 && line[k - 1] == '-';
      if (!fraction && int_token_overflows (line + digits, i - digits, base, negative))
        return "malformed JSON: integer out of range";
    } else {
      i++;
    }
  }
  return NULL;
}
