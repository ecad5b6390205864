/**
 * TCP port forwarding, as gliderlabs' tcpip.go: {@link directTcpipHandler} for `direct-tcpip`
 * channels (`ssh -L`) and {@link ForwardedTcpHandler} for `tcpip-forward` /
 * `cancel-tcpip-forward` requests (`ssh -R`). Both are off until registered **and** allowed by
 * `localPortForwardingCallback` / `reversePortForwardingCallback`.
 *
 * @module
 */
import { lookup } from 'node:dns/promises';
import { isIP, type AddressInfo, type NetConnectOpts, type Server as NetServer } from 'node:net';
import { ChannelRejectReason, type NewChannel } from './channel.js';
import type { Context } from './context.js';
import { ForwardingError } from './errors.js';
import type { ChannelHandler, RequestHandler, RequestReply } from './hooks.js';
import { portForwardingAllowed } from './restrictions.js';
import {
  BAD_PAYLOAD,
  CONNECT_TIMEOUT,
  dial,
  forwardsOf,
  forwardToClient,
  listen,
  MAX_LISTENERS,
  pipeBoth,
  FORWARDING_DISABLED,
} from './internal/forwarding.js';
import { callHook, hookTimeout, runtimeOf, type Runtime } from './internal/runtime.js';
import { prepareForwardChannel } from './internal/ssh2-compat.js';
import { WireReader, WireWriter } from './internal/wire.js';

/**
 * The channel handler for `direct-tcpip` (`ssh -L`): asks `localPortForwardingCallback(ctx,
 * host, port, { originatorAddress, originatorPort })`, then connects to `host:port` and pipes
 * the channel and the connection both ways, with backpressure and half-close.
 *
 * - Unset or false callback: refused "administratively prohibited" (`port forwarding is
 *   disabled`); so is a login whose permissions forbid the destination (`restrict`,
 *   `permitopen`: see `portForwardingAllowed`).
 * - A connect error: refused "connect failed" with the error's message as the text. The connect
 *   is given up after 10 s or when the connection closes (`ctx.signal`).
 * - At most `maxChannels` forwarded connections at once per connection ("resource shortage").
 *
 * @example
 * ```ts
 * new Server({
 *   channelHandlers: { session: defaultSessionHandler, 'direct-tcpip': directTcpipHandler },
 *   localPortForwardingCallback: (ctx, host, port) => host === 'localhost' && port === 8080,
 * });
 * // ssh -L 8080:localhost:8080 user@server
 * ```
 * @see RFC 4254 §7.2
 */
export const directTcpipHandler: ChannelHandler = async (ctx, newChannel) => {
  const rt = runtimeOf(ctx);
  if (!rt) return newChannel.reject(ChannelRejectReason.CONNECT_FAILED, 'not a glidessh connection');
  const r = new WireReader(newChannel.extraData);
  const host = r.string();
  const port = r.uint32();
  const originatorAddress = r.string();
  const originatorPort = r.uint32();
  if (host === undefined || port === undefined || originatorAddress === undefined || originatorPort === undefined || port > 65535) {
    return newChannel.reject(ChannelRejectReason.CONNECT_FAILED, BAD_PAYLOAD);
  }
  const cb = rt.options.localPortForwardingCallback;
  const allowed =
    cb !== undefined &&
    portForwardingAllowed(ctx, host, port, 'local') &&
    (await callHook(rt, 'localPortForwardingCallback', cb, [ctx, host, port, { originatorAddress, originatorPort }], false, hookTimeout(rt))) === true;
  if (!allowed) return newChannel.reject(ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED, FORWARDING_DISABLED);
  await connectChannel(rt, newChannel, { host, port });
};

/**
 * Dials `target` and, once connected, accepts the channel and pipes both ways; refuses the
 * channel with the reason otherwise. Shared with the Unix-socket handler.
 * @internal
 */
export async function connectChannel(rt: Runtime, newChannel: NewChannel, target: NetConnectOpts): Promise<void> {
  // Settle within the hook time limit too, so that the channel is answered by us, not by it.
  const hookLimit = hookTimeout(rt);
  const timeout = hookLimit > 0 ? Math.min(CONNECT_TIMEOUT, hookLimit) : CONNECT_TIMEOUT;
  let socket;
  try {
    socket = await dial(forwardsOf(rt), target, timeout);
  } catch (err) {
    const shortage = err instanceof ForwardingError;
    const reason = shortage ? ChannelRejectReason.RESOURCE_SHORTAGE : ChannelRejectReason.CONNECT_FAILED;
    return newChannel.reject(reason, err instanceof Error ? err.message : String(err));
  }
  const channel = newChannel.accept();
  if (!channel) {
    socket.destroy();
    return;
  }
  prepareForwardChannel(rt.conn, channel);
  void pipeBoth(channel, socket);
}

/** One `tcpip-forward` in place. */
interface TcpForward {
  close(): void;
}

/**
 * Serves `tcpip-forward` and `cancel-tcpip-forward` (`ssh -R`): listens on the address the
 * client asks for and hands each accepted connection to the client on a `forwarded-tcpip`
 * channel. Register the same instance's {@link ForwardedTcpHandler.handleRequest} under both
 * names.
 *
 * - `reversePortForwardingCallback(ctx, bindHost, bindPort)` decides (it sees the requested
 *   port, `0` for "any"); unset or false answers false, as does a login whose permissions
 *   forbid it (`permitlisten`, `restrict`).
 * - `bindHost` `""` or `"*"` listens on every interface, `"localhost"` on 127.0.0.1 and ::1,
 *   a name on each address it resolves to; a bind error (port in use, no permission)
 *   answers false.
 * - Port `0` binds a free port and replies with it (RFC 4254 §7.1). Several port-0 forwards
 *   on one connection each get their own port, and each is cancelled on its own: forwards are
 *   keyed by the port actually bound.
 * - At most 64 listeners per connection (Unix-socket forwards included). Every listener, and
 *   every connection it accepted, closes when the SSH connection ends (also by
 *   `server.close()`).
 *
 * @example
 * ```ts
 * const forwards = new ForwardedTcpHandler();
 * new Server({
 *   requestHandlers: { 'tcpip-forward': forwards.handleRequest, 'cancel-tcpip-forward': forwards.handleRequest },
 *   reversePortForwardingCallback: (ctx, host) => host === 'localhost' || host === '127.0.0.1',
 * });
 * // ssh -R 0:localhost:3000 user@server   → "Allocated port 41234 for remote forward to localhost:3000"
 * ```
 * @see RFC 4254 §7.1
 */
export class ForwardedTcpHandler {
  private readonly forwards = new WeakMap<Context, Map<string, TcpForward>>();

  /** The {@link RequestHandler} for `tcpip-forward` and `cancel-tcpip-forward` (bound to this instance). */
  readonly handleRequest: RequestHandler = (ctx, request) => {
    const rt = runtimeOf(ctx);
    if (!rt) return false;
    if (request.name === 'tcpip-forward') return this.forward(rt, request.payload);
    if (request.name === 'cancel-tcpip-forward') return this.cancel(rt, request.payload);
    return false;
  };

  private async forward(rt: Runtime, payload: Buffer): Promise<boolean | RequestReply> {
    const r = new WireReader(payload);
    const bindHost = r.string();
    const bindPort = r.uint32();
    if (bindHost === undefined || bindPort === undefined || bindPort > 65535) return false;
    const ctx = rt.ctx;
    const cb = rt.options.reversePortForwardingCallback;
    if (!cb || !portForwardingAllowed(ctx, bindHost, bindPort, 'remote')) return false;
    const ok = await callHook(rt, 'reversePortForwardingCallback', cb, [ctx, bindHost, bindPort], false, hookTimeout(rt));
    const state = forwardsOf(rt);
    if (ok !== true || state.closed || state.listeners >= MAX_LISTENERS) return false;
    state.listeners++;
    let bound: { servers: NetServer[]; port: number };
    try {
      bound = await bindTcp(bindHost, bindPort);
    } catch {
      state.listeners--;
      return false;
    }
    const key = `${bindHost}\n${bound.port}`;
    let map = this.forwards.get(ctx);
    if (!map) this.forwards.set(ctx, (map = new Map()));
    if (state.closed || map.has(key)) {
      state.listeners--;
      for (const s of bound.servers) s.close();
      return false;
    }
    const forwards = map;
    let untrack = (): void => undefined;
    const fwd: TcpForward = {
      close: () => {
        if (forwards.get(key) !== fwd) return;
        forwards.delete(key);
        state.listeners--;
        untrack();
        for (const s of bound.servers) s.close();
      },
    };
    forwards.set(key, fwd);
    for (const server of bound.servers) {
      server.on('error', (err: Error) => rt.report(new ForwardingError(`forwarded port ${bound.port}: ${err.message}`, { cause: err })));
      server.on('connection', (socket) =>
        forwardToClient(rt, socket, {
          type: 'forwarded-tcpip',
          boundAddress: bindHost,
          boundPort: bound.port,
          originAddress: socket.remoteAddress ?? '',
          originPort: socket.remotePort ?? 0,
        }),
      );
    }
    untrack = state.track({ destroy: () => fwd.close() });
    return bindPort === 0 ? { ok: true, payload: new WireWriter().uint32(bound.port).toBuffer() } : true;
  }

  private cancel(rt: Runtime, payload: Buffer): boolean {
    const r = new WireReader(payload);
    const bindHost = r.string();
    const port = r.uint32();
    if (bindHost === undefined || port === undefined) return false;
    const fwd = this.forwards.get(rt.ctx)?.get(`${bindHost}\n${port}`);
    if (!fwd) return false;
    fwd.close();
    return true;
  }
}

/** The addresses a `tcpip-forward` bind host stands for (`undefined`: every interface). */
async function bindAddresses(host: string): Promise<Array<string | undefined>> {
  if (host === '' || host === '*') return [undefined];
  if (host === 'localhost') return ['127.0.0.1', '::1'];
  if (isIP(host.replace(/^\[(.*)\]$/, '$1'))) return [host.replace(/^\[(.*)\]$/, '$1')];
  const found = await lookup(host, { all: true });
  return found.slice(0, 8).map((a) => a.address);
}

/**
 * Listens on every address of `host` with one port: the first bind picks it when `port` is 0.
 * Succeeds when at least one address was bound (as sshd does); rejects with the first error.
 */
async function bindTcp(host: string, port: number): Promise<{ servers: NetServer[]; port: number }> {
  const servers: NetServer[] = [];
  let chosen = port;
  let firstError: unknown;
  for (const address of await bindAddresses(host)) {
    try {
      const server = await listen(address === undefined ? { port: chosen } : { host: address, port: chosen });
      servers.push(server);
      if (chosen === 0) chosen = (server.address() as AddressInfo).port;
    } catch (err) {
      firstError ??= err;
    }
  }
  if (servers.length === 0) throw firstError;
  return { servers, port: chosen };
}

