/* Stand-in for the two CUDA runtime calls deepstream-app's source bin makes (test code,
 * see ../README.md). Its own folder, so that the by-hand build of the real app can put
 * it on the include path without our SDK declarations (../include) shadowing NVIDIA's. */
#ifndef DS_STANDIN_CUDA_RUNTIME_API_H
#define DS_STANDIN_CUDA_RUNTIME_API_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  cudaSuccess = 0,
  cudaErrorInvalidDevice = 101,
} cudaError_t;

struct cudaDeviceProp {
  char name[256];
  int major, minor;
  int integrated;
};

cudaError_t cudaGetDevice (int *device);
cudaError_t cudaGetDeviceProperties (struct cudaDeviceProp *prop, int device);

#ifdef __cplusplus
}
#endif

#endif
