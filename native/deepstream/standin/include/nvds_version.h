/* Stand-in for the DeepStream SDK's version header (test code, see ../README.md). */
#ifndef DS_STANDIN_NVDS_VERSION_H
#define DS_STANDIN_NVDS_VERSION_H

#define NVDS_VERSION_MAJOR 7
#define NVDS_VERSION_MINOR 1
#define NVDS_VERSION_MICRO 0

void nvds_version_print (void);
void nvds_dependencies_version_print (void);

#endif
