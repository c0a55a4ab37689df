/* Stand-in for the SDK's object image encoder (test code, see ../README.md). */
#ifndef DS_STANDIN_NVDS_OBJ_ENCODE_H
#define DS_STANDIN_NVDS_OBJ_ENCODE_H

#include <stdbool.h>

#include "gstnvdsmeta.h"
#include "nvbufsurface.h"

G_BEGIN_DECLS

typedef struct _NvDsObjEncCtx *NvDsObjEncCtxHandle;
typedef struct _NvDsObjEncUsrArgs NvDsObjEncUsrArgs;

NvDsObjEncCtxHandle nvds_obj_enc_create_context (int gpu_id);
bool nvds_obj_enc_process (NvDsObjEncCtxHandle ctx, NvDsObjEncUsrArgs *args,
    NvBufSurface *surface, NvDsObjectMeta *object, NvDsFrameMeta *frame);
void nvds_obj_enc_finish (NvDsObjEncCtxHandle ctx);

G_END_DECLS

#endif
