/* Stand-in for the SDK's GStreamer helpers (test code, see ../README.md). */
#ifndef DS_STANDIN_NVDSGSTUTILS_H
#define DS_STANDIN_NVDSGSTUTILS_H

#include <gst/gst.h>

G_BEGIN_DECLS

void configure_source_for_ntp_sync (GstElement *src_elem);

G_END_DECLS

#endif
