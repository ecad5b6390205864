/**
 * One client connection from accept to close: timers, the ssh2 connection, auth, channel
 * opens and global requests.
 *
 * @internal
 * @module
 */
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Authenticator } from './auth.js';
import { ChannelRejectReason, PendingChannel } from './channel.js';
import { ConnectionContext } from './context.js';
import {
  ConnectionClosedError,
  GlidesshError,
  HookError,
  StrictKexRequiredError,
  TimeoutError,
  type TimeoutKind,
} from './errors.js';
import type { Admission } from './limits.js';
import type { ChannelHandler, Handler } from './hooks.js';
import type { ServerOptions } from './options.js';
import { Session } from './session.js';
import {
  disconnect,
  DISCONNECT,
  hookConnection,
  localChannelId,
  openChannelCount,
  sendKeepalive,
  strictKex,
  rejectChannel,
  replyGlobalRequest,
  sessionIdHex,
  setBanner,
  type RawChannelOpen,
  type Ssh2Channel,
  type Ssh2Connection,
} from './internal/ssh2-compat.js';
import {
  callHook,
  hookTimeout,
  registerRuntime,
  runtimeOf,
  type ChannelRequestTarget,
  type Runtime,
} from './internal/runtime.js';
import type { Server } from './server.js';

/** Global requests waiting for an earlier one's answer before the connection is dropped. */
const MAX_PENDING_GLOBAL = 1024;

/** What a connection needs from its server. */
export interface ServerInternals {
  readonly server: Server;
  readonly options: ServerOptions;
  handler(): Handler | undefined;
  report(err: unknown, ctx?: ConnectionContext): void;
  /** Hands the transport to ssh2, which calls `attach` once the client's ident arrived. */
  inject(stream: Duplex, connection: Connection, ctx: ConnectionContext): Promise<void>;
  readonly version: string;
  /** Admission counts and penalty boxes. */
  readonly admission: Admission;
}

/** Signature algorithms glidessh verifies, advertised in `server-sig-algs` (RFC 8308 §3.1). */
export const SERVER_SIG_ALGS: readonly string[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
];

/**
 * The channel handler for `session` channels: accepts the channel and serves it as a
 * {@link Session} with the server's handler, subsystem handlers and callbacks.
 */
export const defaultSessionHandler: ChannelHandler = (ctx, newChannel) => {
  const rt = runtimeOf(ctx);
  if (!rt) {
    newChannel.reject(ChannelRejectReason.CONNECT_FAILED, 'not a glidessh connection');
    return;
  }
  const pending = newChannel as PendingChannel;
  const session = pending.acceptAs
    ? (pending.acceptAs((client, info) => new Session(rt, client, info)) as unknown as Session | undefined)
    : undefined;
  if (!session) {
    if (!newChannel.answered) newChannel.reject(ChannelRejectReason.CONNECT_FAILED, 'not a glidessh channel');
    return;
  }
  rt.channels.set(localChannelId(session as unknown as Ssh2Channel), session);
};

export class Connection {
  readonly ctx: ConnectionContext;
  private conn: Ssh2Connection | undefined;
  private authenticated = false;
  private reachedConnection = false;
  private closed = false;
  private failure: Error | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private handshakeTimer: NodeJS.Timeout | undefined;
  private bannerReady: Promise<void> | undefined;
  private globalReplies: Promise<void> = Promise.resolve();
  private pendingGlobal = 0;
  private noMoreSessions = false;
  private readonly closeWaiters: Array<() => void> = [];
  private authFailures = 0;
  private lastInbound = 0;

  constructor(
    private readonly srv: ServerInternals,
    readonly socket: Duplex,
    /** The source address as admitted (IPv4-mapped IPv6 unwrapped). */
    private readonly source: string,
    /** The addresses (from a PROXY header when there is one). */
    addr?: { remoteAddress?: string; remotePort?: number; localAddress?: string; localPort?: number },
  ) {
    const s = addr ?? (socket as Partial<Socket>);
    this.ctx = new ConnectionContext(srv.server, s);
    this.ctx.serverVersion = `SSH-2.0-${srv.version}`;
  }

  /** Starts serving: timers, `connCallback`, `serverConfigCallback`, then the SSH handshake. */
  async start(): Promise<void> {
    const { socket, srv, ctx } = this;
    const o = srv.options;
    socket.on('error', (err: Error) => (this.failure ??= err));
    socket.once('close', () => this.onClose());
    if (socket instanceof Socket) socket.setNoDelay(true);
    const handshake = o.handshakeTimeout ?? 120_000;
    if (handshake > 0) this.handshakeTimer = this.timer('handshake', handshake);
    if (o.maxTimeout) this.timer('max', o.maxTimeout);
    // The idle timer's 'data' listener goes on only once ssh2 owns the stream: attached now, it
    // would switch the socket to flowing mode and lose what the client sends while an async
    // connCallback or serverConfigCallback runs.
    const idle = o.idleTimeout ? this.timer('idle', o.idleTimeout) : undefined;
    let stream: Duplex = socket;
    if (o.connCallback) {
      const result = await callHook(this.rt(), 'connCallback', o.connCallback, [ctx, socket], null);
      if (result === null) return this.destroy(new GlidesshError('ERR_CONNECTION_DROPPED', 'dropped by connCallback'));
      if (result !== undefined) {
        stream = result;
        stream.on('error', (err: Error) => (this.failure ??= err));
        stream.once('close', () => this.destroy());
      }
    }
    if (this.closed) return;
    await srv.inject(stream, this, ctx);
    if (idle) stream.on('data', () => idle.refresh());
    if (o.keepaliveInterval) stream.on('data', () => (this.lastInbound = Date.now()));
  }

  /** Resolves once the connection has closed. */
  whenClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  /** Ends the connection now. */
  destroy(reason?: Error): void {
    if (reason) this.failure ??= reason;
    if (reason) this.ctx.aborter.abort(() => reason);
    this.socket.destroy();
  }

  /** Called by the server once ssh2 has read the client's identification. */
  attach(conn: Ssh2Connection, info: { header?: { identRaw?: string } }): void {
    const { ctx, srv } = this;
    this.conn = conn;
    conn.on('error', (err: Error) => (this.failure ??= err));
    ctx.clientVersion = info.header?.identRaw ?? '';
    const rt = this.rt();
    registerRuntime(rt);
    const auth = new Authenticator(rt);
    auth.onSuccess = () => {
      this.authenticated = true;
      if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
      srv.admission.authenticated(this.source);
      this.startKeepalive();
    };
    auth.onTooMany = (err) => (this.failure = err);
    this.failedAttempts = () => auth.failures;
    hookConnection(conn, {
      channelOpen: (open) => this.onChannelOpen(rt, open),
      channelRequest: (recipient, type, wantReply, data) => {
        const target = rt.channels.get(recipient);
        if (!target) return false;
        target.onRequest(type, wantReply, data);
        return true;
      },
      globalRequest: (name, wantReply, data) => this.onGlobalRequest(rt, name, wantReply, data),
      signedPublicKey: (data, sig) => auth.rememberSignature(data, sig),
      serviceGate: () => this.bannerReady,
      serverSigAlgs: SERVER_SIG_ALGS,
    });
    conn.on('handshake', () => {
      if (ctx.sessionId) return;
      ctx.sessionId = sessionIdHex(conn);
      if (srv.options.requireStrictKex && !strictKex(conn)) {
        const err = new StrictKexRequiredError();
        this.failure = err;
        disconnect(conn, DISCONNECT.KEY_EXCHANGE_FAILED, err.message);
        this.destroy(err);
      }
    });
    conn.on('authentication', (a) => auth.handle(a));
    const { bannerHandler } = srv.options;
    if (bannerHandler) {
      this.bannerReady = callHook(rt, 'bannerHandler', bannerHandler, [ctx], '', hookTimeout(rt)).then((text) => {
        if (typeof text === 'string' && text !== '') setBanner(conn, text);
      });
    }
    this.reachedConnection = true;
    try {
      srv.server.emit('connection', ctx);
    } catch (err) {
      // A throwing listener is the application's bug; it must not end this connection.
      srv.report(new HookError("'connection' listener", err), ctx);
    }
  }

  private rt(): Runtime {
    const self = this;
    this.runtime ??= {
      get conn(): Ssh2Connection {
        return self.conn!;
      },
      ctx: this.ctx,
      options: this.srv.options,
      handler: () => this.srv.handler(),
      report: (err: unknown) => this.srv.report(err, this.ctx),
      channels: new Map<number, ChannelRequestTarget>(),
    };
    return this.runtime;
  }
  private runtime: Runtime | undefined;
  private failedAttempts: () => number = () => 0;

  /** Server keepalive (OpenSSH ClientAlive*): probe a silent client, drop it when it stays silent. */
  private startKeepalive(): void {
    const o = this.srv.options;
    const interval = o.keepaliveInterval ?? 0;
    if (!interval || !this.conn) return;
    const max = o.keepaliveCountMax ?? 3;
    let missed = 0;
    let seen = this.lastInbound;
    const t = setInterval(() => {
      if (this.lastInbound !== seen) {
        seen = this.lastInbound;
        missed = 0;
        return;
      }
      if (++missed > max) {
        const err = new TimeoutError('keepalive', interval * max);
        disconnect(this.conn!, DISCONNECT.BY_APPLICATION, 'keepalive timeout');
        this.destroy(err);
        return;
      }
      sendKeepalive(this.conn!);
    }, interval);
    t.unref();
    this.timers.push(t);
  }

  private timer(kind: TimeoutKind, ms: number): NodeJS.Timeout {
    const t = setTimeout(() => this.destroy(new TimeoutError(kind, ms)), ms);
    t.unref();
    this.timers.push(t);
    return t;
  }

  private onChannelOpen(rt: Runtime, open: RawChannelOpen): void {
    const conn = this.conn!;
    if (open.packetSize === 0) {
      // ssh2's channel writers loop forever on a maximum packet size of 0 (the process hangs).
      rejectChannel(conn, open, ChannelRejectReason.CONNECT_FAILED, 'maximum packet size 0');
      return;
    }
    const reg = this.srv.options.channelHandlers ?? { session: defaultSessionHandler };
    const handler = Object.hasOwn(reg, open.type) ? reg[open.type] : reg['default'];
    if (!handler) {
      rejectChannel(conn, open, ChannelRejectReason.UNKNOWN_CHANNEL_TYPE, 'unsupported channel type');
      return;
    }
    const o = this.srv.options;
    if (open.type === 'session') {
      if (this.noMoreSessions) {
        rejectChannel(conn, open, ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED, 'no more sessions');
        return;
      }
      let sessions = 0;
      for (const c of rt.channels.values()) if (c instanceof Session) sessions++;
      if (sessions >= (o.maxSessions ?? 10)) {
        rejectChannel(conn, open, ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED, 'too many sessions');
        return;
      }
    }
    if (openChannelCount(conn) >= (o.maxChannels ?? 256)) {
      rejectChannel(conn, open, ChannelRejectReason.RESOURCE_SHORTAGE, 'too many channels');
      return;
    }
    const pending = new PendingChannel(conn, open);
    const name = `channelHandlers.${open.type}`;
    void callHook(rt, name, handler, [this.ctx, pending], undefined, hookTimeout(rt)).then(() => {
      if (!pending.answered) pending.reject(ChannelRejectReason.CONNECT_FAILED, 'channel not accepted');
    });
  }

  private onGlobalRequest(rt: Runtime, name: string, wantReply: boolean, payload: Buffer): void {
    let answer: Promise<boolean | { ok: boolean; payload?: Buffer }>;
    let now: boolean | undefined; // the answer when no hook is involved
    if (name === 'no-more-sessions@openssh.com') {
      this.noMoreSessions = true;
      answer = Promise.resolve((now = true));
    } else {
      const reg = this.srv.options.requestHandlers;
      const handler = reg ? (Object.hasOwn(reg, name) ? reg[name] : reg['default']) : undefined;
      answer = handler
        ? callHook(rt, `requestHandlers.${name}`, handler, [this.ctx, { name, wantReply, payload }], false, hookTimeout(rt))
        : Promise.resolve((now = false));
    }
    if (!wantReply) return;
    // Nothing waits before it: answer at once, so a burst of pipelined requests (one TCP read
    // holds ~1 600) is not mistaken for a queue of slow hooks.
    if (now !== undefined && this.pendingGlobal === 0) return void (this.closed || replyGlobalRequest(this.conn!, now));
    if (++this.pendingGlobal > MAX_PENDING_GLOBAL) return this.destroy(new ConnectionClosedError('too many pending requests'));
    // Replies go out in request order (RFC 4254 §4), whatever order the handlers finish in.
    this.globalReplies = this.globalReplies.then(async () => {
      const result = await answer;
      this.pendingGlobal--;
      if (this.closed) return;
      if (typeof result === 'object' && result !== null) replyGlobalRequest(this.conn!, result.ok === true, result.payload);
      else replyGlobalRequest(this.conn!, result === true);
    });
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    const { ctx, srv } = this;
    const failure = this.failure;
    ctx.aborter.abort(() => failure ?? new ConnectionClosedError());
    srv.admission.closed(this.source, this.authenticated);
    if (!this.authenticated && this.reachedConnection) {
      const timedOut = failure instanceof TimeoutError && failure.kind === 'handshake';
      srv.admission.penalize(this.source, timedOut ? 'graceExceeded' : this.failedAttempts() > 0 ? 'authFail' : 'noAuth');
    } else if (!this.authenticated && failure instanceof TimeoutError) {
      srv.admission.penalize(this.source, 'graceExceeded');
    }
    if (!this.authenticated && srv.options.connectionFailedCallback) {
      const err = this.failure ?? new ConnectionClosedError('closed before authentication');
      try {
        srv.options.connectionFailedCallback(this.socket, err);
      } catch (e) {
        srv.report(new HookError('connectionFailedCallback', e), ctx);
      }
    }
    if (this.reachedConnection && srv.options.connectionCloseCallback) {
      try {
        srv.options.connectionCloseCallback(ctx);
      } catch (e) {
        srv.report(new HookError('connectionCloseCallback', e), ctx);
      }
    }
    for (const w of this.closeWaiters.splice(0)) w();
  }
}
