/* Stand-in for the SDK's surface type: opaque (test code, see ../README.md). */
#ifndef DS_STANDIN_NVBUFSURFACE_H
#define DS_STANDIN_NVBUFSURFACE_H

typedef struct NvBufSurface NvBufSurface;

#endif
