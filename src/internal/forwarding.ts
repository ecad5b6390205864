/**
 * What the forwarding handlers (tcpip.ts, streamlocal.ts, agent.ts) share: per-connection
 * bookkeeping so that every socket, dial and listener of a connection ends with it, bounded
 * counts, dialling with a time limit, binding listeners, and piping a channel and a socket.
 *
 * @internal
 * @module
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { connect, createServer, type ListenOptions, type NetConnectOpts, type Server as NetServer, type Socket } from 'node:net';
import { pipeline, type Duplex } from 'node:stream';
import { ConnectionClosedError, ForwardingError } from '../errors.js';
import type { Context } from '../context.js';
import { openChannelCount, openClientChannel, type ClientChannelOpen } from './ssh2-compat.js';
import type { Runtime } from './runtime.js';

/** Listeners (`tcpip-forward` and `streamlocal-forward`) per SSH connection. */
export const MAX_LISTENERS = 64;
/** Milliseconds a `direct-tcpip` / `direct-streamlocal` dial may take. */
export const CONNECT_TIMEOUT = 10_000;

const noop = (): void => undefined;

/** One SSH connection's forwarding resources; all of them end when the connection closes. */
export class ConnectionForwards {
  /** Whether the connection has closed. */
  closed = false;
  /** Forwarded connections being dialled or piped. */
  open = 0;
  /** Listeners bound or being bound. */
  listeners = 0;
  private readonly resources = new Set<{ destroy(): void }>();

  /** @param limit forwarded connections (dialling or open, agent included) at once: `maxChannels`. */
  constructor(readonly limit: number) {}

  /** Ends `r` when the connection closes (at once if it has); returns the remover. */
  track(r: { destroy(): void }): () => void {
    if (this.closed) {
      r.destroy();
      return noop;
    }
    this.resources.add(r);
    return () => void this.resources.delete(r);
  }

  /**
   * Counts one forwarded connection on `socket` until it closes; false (and the socket
   * destroyed) when the connection is closed or at its limit.
   */
  admit(socket: Socket): boolean {
    socket.on('error', noop);
    if (this.closed || this.open >= this.limit) {
      socket.destroy();
      return false;
    }
    this.open++;
    const untrack = this.track(socket);
    socket.once('close', () => {
      this.open--;
      untrack();
    });
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of [...this.resources]) r.destroy();
    this.resources.clear();
  }
}

const states = new WeakMap<Context, ConnectionForwards>();

/** The forwarding state of the connection `rt` belongs to (one abort listener per connection). */
export function forwardsOf(rt: Runtime): ConnectionForwards {
  let state = states.get(rt.ctx);
  if (!state) {
    const s = new ConnectionForwards(rt.options.maxChannels ?? 256);
    states.set(rt.ctx, s);
    const signal = rt.ctx.signal;
    if (signal.aborted) s.close();
    else signal.addEventListener('abort', () => s.close(), { once: true });
    state = s;
  }
  return state;
}

/**
 * Connects to a TCP or Unix-socket target with half-close allowed. The socket counts against
 * the connection's limit from the start and is destroyed if the connection closes. Rejects
 * with the socket's error (its message is the reason: "connect ECONNREFUSED 127.0.0.1:9"),
 * after `timeoutMs`, when the connection closes, or with a {@link ForwardingError} at the limit.
 */
export function dial(state: ConnectionForwards, target: NetConnectOpts, timeoutMs = CONNECT_TIMEOUT): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (state.closed) return reject(new ConnectionClosedError());
    if (state.open >= state.limit) return reject(new ForwardingError('too many forwarded connections'));
    let socket: Socket;
    try {
      socket = connect({ ...target, allowHalfOpen: true });
    } catch (err) {
      return reject(err);
    }
    state.admit(socket);
    const settle = (err?: Error): void => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (!err) return resolve(socket);
      socket.destroy();
      reject(err);
    };
    const onConnect = (): void => settle();
    const onError = (err: Error): void => settle(err);
    const onClose = (): void => settle(new ConnectionClosedError());
    const timer = setTimeout(() => settle(new Error(`connect timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    socket.once('connect', onConnect);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}

/**
 * Pipes a channel and a socket both ways with backpressure (`stream.pipeline`); the end of
 * one side's data ends the other's writing side (half-close), and an error on either side
 * destroys both. Resolves when both directions are done.
 */
export function pipeBoth(channel: Duplex, socket: Duplex): Promise<void> {
  return new Promise((resolve) => {
    let pending = 2;
    const done = (): void => {
      if (--pending === 0) resolve();
    };
    pipeline(socket, channel, done);
    pipeline(channel, socket, done);
  });
}

/**
 * Serves one accepted socket over a channel the server opens to the client (forwarded-tcpip,
 * forwarded-streamlocal, auth-agent). The socket is dropped if the connection is at its limit
 * or the client refuses the channel.
 */
export function forwardToClient(rt: Runtime, socket: Socket, open: ClientChannelOpen): void {
  const state = forwardsOf(rt);
  if (openChannelCount(rt.conn) >= state.limit || !state.admit(socket)) {
    socket.destroy();
    return;
  }
  openClientChannel(rt.conn, open).then(
    (channel) => {
      if (socket.destroyed) {
        channel.destroy();
        return;
      }
      void pipeBoth(channel, socket);
    },
    () => socket.destroy(),
  );
}

/** A bound listener with its cleanup. */
export interface Bound {
  server: NetServer;
  /** Closes the listener (and for a Unix socket removes the file it created). */
  close(): void;
}

/** Listens with half-close allowed; rejects with the bind error (EADDRINUSE, EACCES, …). */
export function listen(options: ListenOptions): Promise<NetServer> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: true });
    const onError = (err: Error): void => {
      server.close();
      reject(err);
    };
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve(server);
    });
  });
}

/**
 * Binds a Unix socket at `path` readable and writable by the owner only (as sshd's
 * StreamLocalBindMask 0177). An existing file is never replaced (EADDRINUSE). `close()`
 * removes the socket file only if it is still the one this call created.
 */
export async function listenUnix(path: string): Promise<Bound> {
  const server = await listen({ path });
  let ino: number | undefined;
  try {
    ino = lstatSync(path).ino;
    await chmod(path, 0o600);
  } catch (err) {
    server.close();
    throw err;
  }
  let closed = false;
  return {
    server,
    close(): void {
      if (closed) return;
      closed = true;
      server.close();
      try {
        // libuv unlinks a listening pipe's file on close; this covers the cases it does not.
        const st = lstatSync(path, { throwIfNoEntry: false });
        if (st && st.isSocket() && st.ino === ino) unlinkSync(path);
      } catch {
        // Gone already, or not ours to remove.
      }
    },
  };
}

/** A request payload that did not parse. */
export const BAD_PAYLOAD = 'error parsing forward data';

/** The refusal text of a forward the callbacks did not allow (as gliderlabs sends it). */
export const FORWARDING_DISABLED = 'port forwarding is disabled';
