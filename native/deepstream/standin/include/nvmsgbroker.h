/* Stand-in for the SDK's message broker client (test code, see ../README.md). */
#ifndef DS_STANDIN_NVMSGBROKER_H
#define DS_STANDIN_NVMSGBROKER_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  NV_MSGBROKER_API_OK,
  NV_MSGBROKER_API_ERR,
  NV_MSGBROKER_API_NOT_SUPPORTED,
} NvMsgBrokerErrorType;

typedef void *NvMsgBrokerClientHandle;
typedef void (*nv_msgbroker_connect_cb_t) (NvMsgBrokerClientHandle h_ptr,
    NvMsgBrokerErrorType status);
typedef void (*nv_msgbroker_subscribe_cb_t) (NvMsgBrokerErrorType status, void *msg,
    int msglen, char *topic, void *user_ptr);

NvMsgBrokerClientHandle nv_msgbroker_connect (char *broker_conn_str, char *broker_proto_lib,
    nv_msgbroker_connect_cb_t connect_cb, char *cfg);
NvMsgBrokerErrorType nv_msgbroker_subscribe (NvMsgBrokerClientHandle h_ptr, char **topics,
    int num_topics, nv_msgbroker_subscribe_cb_t cb, void *user_ctx);
NvMsgBrokerErrorType nv_msgbroker_disconnect (NvMsgBrokerClientHandle h_ptr);

#ifdef __cplusplus
}
#endif

#endif
