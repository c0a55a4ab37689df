/* The stand-in plugin's element types (ds-standin-plugin.c registers them). Test code,
 * see ../README.md. */
#ifndef DS_STANDIN_ELEMENTS_H
#define DS_STANDIN_ELEMENTS_H

#include <gst/gst.h>

#include "ds-standin.h"

G_BEGIN_DECLS

GType ds_standin_mux_get_type (void);        /* nvstreammux (legacy) */
GType ds_standin_tracker_get_type (void);    /* nvtracker */
GType ds_standin_decoder_get_type (void);    /* nvv4l2decoder */
GType ds_standin_surfaces_get_type (void);   /* dsstandinsurfaces, inside the decoder */
GType ds_standin_sink_get_type (void);       /* dsstandinsink, the stand-in app's sink */

/* A decoder surface: attached by the decoder's pool to each buffer it hands out. TRUE
 * when `buffer` carries a surface its decoder has already taken back (a read of freed
 * memory on a GPU). */
gboolean ds_standin_surface_is_poisoned (GstBuffer *buffer);

/* nvinfer, nvvideoconvert, nvmultistreamtiler, nvdsosd: buffers pass untouched. */
gboolean ds_standin_passthrough_register (GstPlugin *plugin);

G_END_DECLS

#endif
