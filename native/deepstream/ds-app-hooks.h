/* Hooks that patches/ puts into deepstream-app's main(): with DS_CONTROL_SOCKET set, the
 * stock pipeline becomes an engine behind the control shim (docs/engine-protocol.md).
 * Without it both hooks do nothing and the app behaves as stock. */
#ifndef DS_APP_HOOKS_H
#define DS_APP_HOOKS_H

#include "deepstream_app.h"

G_BEGIN_DECLS

/* After create_pipeline(), before PLAYING. Takes over the URI slots, starts the control
 * socket. FALSE (after a message on stderr) when control mode cannot run. */
gboolean ds_app_hooks_attach (AppCtx **app_ctx, guint n_instances);

/* Right after `done:` in main(). Stops the slots (they stay NULL through the stock
 * teardown), closes the socket. After a fatal pipeline error it reports `fatal` and
 * exits with status 1. No-op when attach did not run. */
void ds_app_hooks_detach (void);

G_END_DECLS

#endif /* DS_APP_HOOKS_H */
