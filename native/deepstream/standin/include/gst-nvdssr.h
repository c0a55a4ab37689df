/* Stand-in for the SDK's smart-record calls: opaque types, the status names (test code,
 * see ../README.md). */
#ifndef DS_STANDIN_GST_NVDSSR_H
#define DS_STANDIN_GST_NVDSSR_H

#include <gst/gst.h>

G_BEGIN_DECLS

typedef guint32 NvDsSRSessionId;
typedef struct _NvDsSRContext NvDsSRContext;
typedef struct _NvDsSRInitParams NvDsSRInitParams;

typedef enum {
  NVDSSR_STATUS_OK,
  NVDSSR_STATUS_INVALID_VAL,
  NVDSSR_STATUS_INVALID_OP,
  NVDSSR_STATUS_ERROR,
} NvDsSRStatus;

NvDsSRStatus NvDsSRCreate (NvDsSRContext **ctx, NvDsSRInitParams *params);
NvDsSRStatus NvDsSRStart (NvDsSRContext *ctx, NvDsSRSessionId *sessionId,
    guint startTime, guint duration, gpointer userData);
NvDsSRStatus NvDsSRStop (NvDsSRContext *ctx, NvDsSRSessionId sessionId);
NvDsSRStatus NvDsSRDestroy (NvDsSRContext *ctx);

G_END_DECLS

#endif
