/**
 * Unix-socket forwarding, OpenSSH's streamlocal extension: {@link directStreamLocalHandler}
 * for `direct-streamlocal@openssh.com` channels (`ssh -L 8080:/run/app.sock`) and
 * {@link ForwardedUnixHandler} for `streamlocal-forward@openssh.com` /
 * `cancel-streamlocal-forward@openssh.com` requests (`ssh -R /tmp/app.sock:localhost:8080`).
 * Both are off until registered **and** allowed by `localUnixForwardingCallback` /
 * `reverseUnixForwardingCallback`.
 *
 * @module
 */
import { ChannelRejectReason } from './channel.js';
import type { Context } from './context.js';
import { ForwardingError } from './errors.js';
import type { ChannelHandler, RequestHandler } from './hooks.js';
import { isPermitted } from './restrictions.js';
import { connectChannel } from './tcpip.js';
import {
  BAD_PAYLOAD,
  forwardsOf,
  forwardToClient,
  FORWARDING_DISABLED,
  listenUnix,
  MAX_LISTENERS,
  type Bound,
} from './internal/forwarding.js';
import { callHook, hookTimeout, runtimeOf, type Runtime } from './internal/runtime.js';
import { WireReader } from './internal/wire.js';

/**
 * The channel handler for `direct-streamlocal@openssh.com` (`ssh -L PORT:/path.sock`): asks
 * `localUnixForwardingCallback(ctx, socketPath)`, then connects to the socket and pipes both
 * ways with backpressure and half-close. Unset or false callback (or a login whose
 * permissions forbid port forwarding): refused "administratively prohibited"; a connect
 * error: refused "connect failed" with its message.
 *
 * @example
 * ```ts
 * new Server({
 *   channelHandlers: { session: defaultSessionHandler, 'direct-streamlocal@openssh.com': directStreamLocalHandler },
 *   localUnixForwardingCallback: (ctx, path) => path === '/run/app.sock',
 * });
 * // ssh -L 8080:/run/app.sock user@server
 * ```
 * @see OpenSSH PROTOCOL §2.4 (streamlocal), RFC 4254 §7.2
 */
export const directStreamLocalHandler: ChannelHandler = async (ctx, newChannel) => {
  const rt = runtimeOf(ctx);
  if (!rt) return newChannel.reject(ChannelRejectReason.CONNECT_FAILED, 'not a glidessh connection');
  // string socket path, string reserved, uint32 reserved
  const socketPath = new WireReader(newChannel.extraData).string();
  if (socketPath === undefined || socketPath === '' || socketPath.includes('\0')) {
    return newChannel.reject(ChannelRejectReason.CONNECT_FAILED, BAD_PAYLOAD);
  }
  const cb = rt.options.localUnixForwardingCallback;
  const allowed =
    cb !== undefined &&
    isPermitted(ctx, 'port-forwarding') &&
    (await callHook(rt, 'localUnixForwardingCallback', cb, [ctx, socketPath], false, hookTimeout(rt))) === true;
  if (!allowed) return newChannel.reject(ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED, FORWARDING_DISABLED);
  await connectChannel(rt, newChannel, { path: socketPath });
};

/**
 * Serves `streamlocal-forward@openssh.com` and `cancel-streamlocal-forward@openssh.com`
 * (`ssh -R /path.sock:host:port`): listens on the Unix socket the client names and hands each
 * accepted connection to the client on a `forwarded-streamlocal@openssh.com` channel. Register
 * the same instance's {@link ForwardedUnixHandler.handleRequest} under both names.
 *
 * - `reverseUnixForwardingCallback(ctx, socketPath)` decides; unset or false answers false.
 * - The socket is created mode 0600 (sshd's StreamLocalBindMask); an existing file at the path
 *   is never replaced (the request is answered false).
 * - The socket file is removed on cancel and when the connection ends, if it is still the one
 *   the server created. At most 64 listeners per connection (TCP forwards included).
 *
 * @example
 * ```ts
 * const unixForwards = new ForwardedUnixHandler();
 * new Server({
 *   requestHandlers: {
 *     'streamlocal-forward@openssh.com': unixForwards.handleRequest,
 *     'cancel-streamlocal-forward@openssh.com': unixForwards.handleRequest,
 *   },
 *   reverseUnixForwardingCallback: (ctx, path) => path.startsWith(`/tmp/${ctx.user}/`),
 * });
 * ```
 * @see OpenSSH PROTOCOL §2.4 (streamlocal), RFC 4254 §7.1
 */
export class ForwardedUnixHandler {
  private readonly forwards = new WeakMap<Context, Map<string, () => void>>();

  /** The {@link RequestHandler} for both request names (bound to this instance). */
  readonly handleRequest: RequestHandler = (ctx, request) => {
    const rt = runtimeOf(ctx);
    if (!rt) return false;
    const socketPath = new WireReader(request.payload).string();
    if (socketPath === undefined || socketPath === '' || socketPath.includes('\0')) return false;
    if (request.name === 'streamlocal-forward@openssh.com') return this.forward(rt, socketPath);
    if (request.name === 'cancel-streamlocal-forward@openssh.com') {
      const close = this.forwards.get(ctx)?.get(socketPath);
      close?.();
      return close !== undefined;
    }
    return false;
  };

  private async forward(rt: Runtime, socketPath: string): Promise<boolean> {
    const ctx = rt.ctx;
    const cb = rt.options.reverseUnixForwardingCallback;
    if (!cb || !isPermitted(ctx, 'port-forwarding')) return false;
    const ok = await callHook(rt, 'reverseUnixForwardingCallback', cb, [ctx, socketPath], false, hookTimeout(rt));
    const state = forwardsOf(rt);
    let map = this.forwards.get(ctx);
    if (!map) this.forwards.set(ctx, (map = new Map()));
    if (ok !== true || state.closed || state.listeners >= MAX_LISTENERS || map.has(socketPath)) return false;
    state.listeners++;
    let bound: Bound;
    try {
      bound = await listenUnix(socketPath);
    } catch {
      state.listeners--;
      return false;
    }
    const forwards = map;
    let untrack = (): void => undefined;
    const close = (): void => {
      if (forwards.get(socketPath) !== close) return;
      forwards.delete(socketPath);
      state.listeners--;
      untrack();
      bound.close();
    };
    forwards.set(socketPath, close);
    bound.server.on('error', (err: Error) => rt.report(new ForwardingError(`forwarded socket ${socketPath}: ${err.message}`, { cause: err })));
    bound.server.on('connection', (socket) =>
      forwardToClient(rt, socket, { type: 'forwarded-streamlocal@openssh.com', socketPath }),
    );
    untrack = state.track({ destroy: close });
    return true;
  }
}
