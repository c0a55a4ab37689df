/* Stand-in for the DeepStream SDK's custom events: the stream reset the adapter sends
 * into a muxer pad, and the per-source stream EOS the legacy muxer sends downstream.
 * Our own declarations, with the SDK's names so ds-app-adapter.c builds unchanged
 * (test code, see ../README.md). */
#ifndef DS_STANDIN_GST_NVEVENT_H
#define DS_STANDIN_GST_NVEVENT_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define DS_STANDIN_EVENT_FLAGS (GST_EVENT_TYPE_DOWNSTREAM | GST_EVENT_TYPE_SERIALIZED)

typedef enum {
  GST_NVEVENT_STREAM_EOS = GST_EVENT_MAKE_TYPE (310, DS_STANDIN_EVENT_FLAGS),
  GST_NVEVENT_STREAM_RESET = GST_EVENT_MAKE_TYPE (312, DS_STANDIN_EVENT_FLAGS),
} GstNvEventType;

GstEvent *gst_nvevent_new_stream_reset (guint source_id);
void gst_nvevent_parse_stream_reset (GstEvent *event, guint *source_id);
GstEvent *gst_nvevent_new_stream_eos (guint source_id);
void gst_nvevent_parse_stream_eos (GstEvent *event, guint *source_id);

G_END_DECLS

#endif
