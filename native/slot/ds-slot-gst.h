/* ds-slot-gst: the GStreamer side of ds-slot-core, shared by both engines: which slot an
 * element belongs to, and the text a slot's bus error is reported with. */
#ifndef DS_SLOT_GST_H
#define DS_SLOT_GST_H

#include <gst/gst.h>

#include "ds-slot-core.h"

G_BEGIN_DECLS

/* Marks element (and so everything inside it) as part of slot `index`. Call before the
 * pipeline runs; an element belongs to one slot. */
void ds_slot_tag_element (GstElement *element, guint index);

/* The slot of obj: the index tagged on obj or its nearest tagged ancestor, DS_SLOT_NONE
 * when there is none. Safe from any thread (a bus sync handler). */
guint ds_slot_of_object (GstObject *obj);

/* A slot's uridecodebin "source-setup" handler; user_data: the slot's DsLiveOptions
 * (ds-live.h), valid while the slot lives. rtspsrc takes the slot's [sourceK]
 * select-rtp-protocol and latency; any other source is left as it is. */
void ds_slot_on_source_setup (GstElement *decodebin, GstElement *source, gpointer options);

/* The text of an ERROR message as a file_error reports it:
 * "<message>: <last line of the debug text>" — the tail names the cause (e.g. the
 * missing path) without the source location; the message's trailing period goes, and a
 * tail that is only a location is left out. NULL when msg is not an ERROR. */
gchar *ds_slot_error_text (GstMessage *msg);

/* A live source's refusal that will not heal: 401, 403 or 404 when the ERROR message says
 * so (GST_RESOURCE_ERROR with the status in the debug text, as rtspsrc and souphttpsrc
 * write it; NOT_AUTHORIZED alone counts as 401), else 0 (retried as an outage). */
gint ds_slot_error_refusal (GstMessage *msg);

G_END_DECLS

#endif /* DS_SLOT_GST_H */
