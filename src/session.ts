/**
 * {@link Session}: one `session` channel, as a Duplex stream, with the session request rules
 * of RFC 4254 §6 in one place.
 *
 * @module
 */
import type { Writable } from 'node:stream';
import { splitCommand } from './command.js';
import { copyPermissions, type Context } from './context.js';
import { ChannelClosedError, SessionExitedError } from './errors.js';
import type { Handler } from './hooks.js';
import type { PublicKey } from './keys.js';
import { CrlfEncoder, readPtyRequest, readWindow } from './pty.js';
import type { Permissions, Pty, Signal, Window } from './types.js';
import {
  afterTransportDrain,
  SessionChannelBase,
  channelWritable,
  closedByClient,
  localChannelId,
  ExtendedDataWriter,
  ownPendingChunks,
  prepareSessionChannel,
  releasePendingWrites,
  renameForSsh2,
  replyChannelRequest,
  sendChannelRequest,
  sendExitSignal,
  sendExitStatus,
  type Ssh2Channel,
} from './internal/ssh2-compat.js';
import { callHook, hookTimeout, type Runtime } from './internal/runtime.js';
import { WireReader } from './internal/wire.js';
import { readChunks } from './internal/chunks.js';
import { crlfKernel } from './internal/crlf-wasm.js';
import { PtyOutput } from './internal/pty-output.js';
import { windowChangeIterator } from './internal/window-changes.js';
import { LazySignal } from './internal/lazy-signal.js';
import { applySessionRestrictions, isPermitted } from './restrictions.js';
import { agentForwardingAllowed } from './agent.js';

/** Signals kept for a `'signal'` listener that is not attached yet. */
const SIGNAL_BUFFER = 128;
/** Requests waiting for an earlier one's (async) answer before the channel is closed. */
const MAX_QUEUED_REQUESTS = 1024;
/** Bounds on what `env` requests may store. */
const MAX_ENV = 256;
const MAX_ENV_BYTES = 64 * 1024;
/** Request types answered synchronously (no hook, no await in `handleRequest`); never list one that awaits. */
const IMMEDIATE_REQUESTS = new Set(['env', 'window-change', 'signal', 'break']);

/** The events a {@link Session} emits besides the stream events. */
export type SessionEvents = {
  /** An accepted window change. */
  'window-change': [w: Window];
  /** A signal from the client, e.g. `'INT'`; buffered (at most 128) until a listener is attached. */
  signal: [name: Signal];
  /** A break request (RFC 4335); answered true only while a listener is attached. */
  break: [lengthMs: number];
};

/**
 * One SSH session: a shell, an exec or a subsystem. Reading gives the client's stdin (it
 * ends at the client's EOF); writing sends stdout; `end()` sends EOF. `for await` over a
 * session reads stdin and does not destroy the session when the loop ends.
 *
 * @example
 * ```ts
 * server.handle(async (s) => {
 *   s.write(`hello ${s.user}, you ran ${JSON.stringify(s.command)}\n`);
 *   for await (const chunk of s) s.write(chunk); // echo until EOF
 *   await s.exit(0);
 * });
 * ```
 * @see RFC 4254 §6
 */
export class Session extends SessionChannelBase {
  /** `env` requests as `"KEY=value"`, in arrival order. */
  readonly environ: string[] = [];
  /** The exec command exactly as sent; `""` for a shell or subsystem. */
  rawCommand = '';
  /** The requested subsystem name, else `""`. */
  subsystem = '';
  /** Set once a `pty-req` was accepted. */
  pty: Pty | undefined;
  /**
   * Whether output under a pty has `\n` turned into `\r\n` (stdout and stderr). Set it to
   * `false` to pass bytes through untouched, as for a program in a real PTY (`runInPty`).
   * @defaultValue `true`
   */
  translateNewlines = true;

  private readonly rt: Runtime;
  private started = false;
  private exited = false;
  private channelClosed = false;
  /** The last request in line (none once it was answered). */
  private queue: Promise<void> | undefined;
  private queued = 0;
  /** The handler of an accepted shell/exec/subsystem, until its reply went out. */
  private starting: Handler | undefined;
  /** State most sessions never need, made on first use (it keeps an idle session small). */
  private more: SessionExtras | undefined;

  /**
   * @internal Built by the session channel handler: the session is the ssh2 channel itself
   * (one stream, one buffer), made to send EOF, exit status and CLOSE as a session must.
   */
  constructor(rt: Runtime, client: object, info: object) {
    super(client, info);
    prepareSessionChannel(this);
    this.rt = rt;
    // Shared listener functions (no closures per session). A stream error must never become
    // an uncaught 'error' event.
    this.on('error', Session.onError);
    this.on('newListener', Session.onNewListener);
  }

  private static onError(this: Session, err: Error): void {
    this.rt.report(err);
  }

  private static onNewListener(this: Session, event: string | symbol): void {
    if (event === 'signal' && this.more?.signals?.length) process.nextTick(() => this.flushSignals());
  }

  /**
   * @internal Notes the channel's close before any 'close' listener runs (an override rather
   * than a listener of our own: a third 'close' listener costs a 150-byte array per session).
   */
  override emit(event: string | symbol, ...args: any[]): boolean {
    if (event === 'close') this.onChannelClose();
    return super.emit(event, ...args);
  }

  /** The connection's context. */
  get context(): Context {
    return this.rt.ctx;
  }

  /** State made on first use. */
  private get extra(): SessionExtras {
    return (this.more ??= {});
  }

  /** The authenticated user name. */
  get user(): string {
    return this.context.user;
  }

  /** Client address. */
  get remoteAddress(): string {
    return this.context.remoteAddress;
  }

  /** Client port. */
  get remotePort(): number {
    return this.context.remotePort;
  }

  /** Server address. */
  get localAddress(): string {
    return this.context.localAddress;
  }

  /** Server port. */
  get localPort(): number {
    return this.context.localPort;
  }

  /** The key that authenticated the connection, if any. */
  get publicKey(): PublicKey | undefined {
    return this.context.publicKey;
  }

  /** Extended data (stderr) to the client. Under a pty, `\n` becomes `\r\n` here too. */
  get stderr(): Writable {
    const x = this.extra;
    x.stderrWriter ??= new ExtendedDataWriter(
      this.channel,
      this.rt.conn,
      (b) => {
        x.ptyOut?.flush(); // stdout held back goes first
        return this.pty && this.translateNewlines ? (x.errCrlf ??= new CrlfEncoder()).encodeTransient(b) : b;
      },
      () => this.ownPending(),
    );
    return x.stderrWriter;
  }

  /** @internal ssh2's Channel constructor assigns a stderr stream of its own; the session makes its own when first used. */
  set stderr(_ignored: Writable) {}

  /** The exec command split by POSIX shell rules (see `splitCommand`); `[]` for a shell. */
  get command(): string[] {
    const x = this.extra;
    x.commandCache ??= splitCommand(this.rawCommand);
    return [...x.commandCache];
  }

  /** A copy of what the auth handlers granted (the connection's permissions stay unchanged). */
  get permissions(): Permissions {
    const x = this.extra;
    x.permissionsCopy ??= copyPermissions(this.context.permissions);
    return x.permissionsCopy;
  }

  /** The ssh2 view of this session's channel. */
  private get channel(): Ssh2Channel {
    return this as unknown as Ssh2Channel;
  }

  /** Aborts when the session's channel closes. */
  get signal(): AbortSignal {
    const x = this.extra;
    if (!x.aborter) {
      x.aborter = new LazySignal();
      if (this.channelClosed) x.aborter.abort(() => new ChannelClosedError());
    }
    return x.aborter.signal;
  }

  /** Whether the client sent `auth-agent-req@openssh.com` on this session. */
  get agentRequested(): boolean {
    return this.more?.agent === true;
  }

  /** @internal Whether CRLF translation applies. */
  get isPty(): boolean {
    return this.pty !== undefined;
  }

  /**
   * Sends `exit-status`, then closes the channel. Output written before is delivered first.
   * A second call (or a call after `exitSignal`) rejects with `ERR_SESSION_EXITED`.
   * @see RFC 4254 §6.10
   */
  async exit(code: number): Promise<void> {
    if (this.exited) throw new SessionExitedError();
    this.exited = true;
    await this.flushOutput();
    sendExitStatus(this.rt.conn, this.channel, Number.isInteger(code) ? code : 1);
    this.channel.close();
  }

  /**
   * Sends `exit-signal` (a signal name without `SIG`), then closes the channel.
   * @see RFC 4254 §6.10
   */
  async exitSignal(signal: string, coreDumped = false, message = ''): Promise<void> {
    if (this.exited) throw new SessionExitedError();
    this.exited = true;
    await this.flushOutput();
    sendExitSignal(this.rt.conn, this.channel, signal, coreDumped, message);
    this.channel.close();
  }

  /**
   * Sends a channel request to the client. With `wantReply`, resolves with its answer;
   * otherwise resolves `true` once sent. Rejects with `ERR_CHANNEL_CLOSED` if the channel is closed.
   */
  sendRequest(name: string, wantReply: boolean, payload: Buffer = Buffer.alloc(0)): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const sent = sendChannelRequest(this.rt.conn, this.channel, name, wantReply, payload, resolve);
      if (!sent) reject(new ChannelClosedError());
      else if (!wantReply) resolve(true);
    });
  }

  /**
   * The window sizes: first the initial one, then each accepted change; ends when the
   * session closes. Without a pty it yields nothing. A reader that falls behind keeps only
   * the newest 64 changes.
   */
  windowChanges(): AsyncIterable<Window> {
    const session = this;
    return {
      [Symbol.asyncIterator]: () =>
        windowChangeIterator({
          initial: session.pty?.window,
          closed: session.channelClosed,
          get signal() {
            return session.signal;
          },
          on: session.on.bind(session),
          off: session.off.bind(session),
        }),
    };
  }

  /**
   * Reads stdin chunk by chunk as it arrived (never concatenated); ending or breaking the
   * loop leaves the session open (Node's default would destroy it).
   */
  override [Symbol.asyncIterator](): AsyncIterableIterator<any> {
    return readChunks(this);
  }

  /** Adds a listener for a session event (`'window-change'`, `'signal'`, `'break'`) or a stream event. */
  override on<E extends keyof SessionEvents>(event: E, listener: (...args: SessionEvents[E]) => void): this;
  /** Adds a listener for a stream event. */
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event, listener);
  }

  // --- stream plumbing ------------------------------------------------------------------------

  /**
   * Writes stdout. Once the session ended its output (`end()`, `exit()`) or the channel
   * closed, writes are dropped (the callback still runs) instead of raising an error.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    if (this.writableEnded || this.channelClosed) {
      const done = typeof encoding === 'function' ? encoding : cb;
      if (done) process.nextTick(done);
      return false;
    }
    return super.write(chunk, encoding as BufferEncoding, cb);
  }

  /** @internal */
  override _write(chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.channelClosed || !channelWritable(this.channel)) return cb();
    if (this.pty && this.translateNewlines) return (this.extra.ptyOut ??= new PtyOutput(this.channel, this.rt.conn)).write(chunk, cb);
    const held = this.more?.ptyOut;
    if (held?.holding) return held.flush(() => this._write(chunk, enc, cb));
    super._write(chunk, enc, afterTransportDrain(this.rt.conn, cb));
  }

  /** Copies what ssh2 kept of a transient pty-encoded stderr chunk (it waits for window space). */
  private ownPending(): void {
    const scratch = crlfKernel()?.memory;
    if (scratch) ownPendingChunks(this.channel, scratch);
  }

  /**
   * @internal ssh2 pushes the client's data here; a push(null) on a channel the client closed
   * is the earliest sign of the close (ssh2's 'close' waits until unread input is consumed).
   */
  override push(chunk: any, encoding?: BufferEncoding): boolean {
    const more = super.push(chunk, encoding);
    if (chunk === null && closedByClient(this.channel)) this.onChannelClose();
    return more;
  }

  /** @internal */
  override _final(cb: (err?: Error | null) => void): void {
    const held = this.more?.ptyOut;
    if (held?.holding && !this.channelClosed) return held.flush(() => this._final(cb));
    const stderr = this.more?.stderrWriter;
    const done = (): void => {
      if (channelWritable(this.channel)) this.channel.eof();
      cb();
    };
    if (!stderr || stderr.writableFinished || this.channelClosed) return done();
    stderr.once('finish', done);
    stderr.end();
  }

  /** Ends stdout and stderr (sending EOF) and waits until both are flushed or the channel closed. */
  private flushOutput(): Promise<void> {
    if (this.channelClosed || this.writableFinished) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let settled = false;
      const done = (): void => {
        if (settled) return;
        settled = true;
        this.off('finish', done);
        resolve();
      };
      this.once('finish', done);
      (this.extra.closeWaiters ??= []).push(done);
      if (!this.writableEnded) this.end();
    });
  }

  private onChannelClose(): void {
    if (this.channelClosed) return;
    this.channelClosed = true;
    this.exited = true;
    this.more?.aborter?.abort(() => new ChannelClosedError());
    releasePendingWrites(this.channel);
    for (const w of this.more?.closeWaiters?.splice(0) ?? []) w();
    this.rt.channels.delete(localChannelId(this.channel));
  }


  // --- requests -------------------------------------------------------------------------------

  /** @internal Entry point for every channel request on this session, in arrival order. */
  onRequest(type: string, wantReply: boolean, data: Buffer): void {
    if (this.queued >= MAX_QUEUED_REQUESTS) {
      this.channel.close();
      return;
    }
    // A request answered without a hook that arrives while nothing waits is handled at once and
    // does not count: one TCP read can hold ~1 600 pipelined requests, which is no queue at all.
    const now = this.queued === 0 && IMMEDIATE_REQUESTS.has(type);
    const answer = now ? this.handleRequest(type, data, wantReply) : undefined;
    answer?.catch(() => undefined); // awaited below, in order
    if (!now) this.queued++;
    const next: Promise<void> = (this.queue ?? RESOLVED).then(async () => {
      let ok = false;
      try {
        ok = await (answer ?? this.handleRequest(type, data, wantReply));
      } catch (err) {
        this.rt.report(err);
      } finally {
        if (!now) this.queued--;
        if (wantReply && !this.channelClosed) replyChannelRequest(this.rt.conn, this.channel, ok);
        if (this.queue === next) this.queue = undefined;
        // A shell, exec or subsystem was accepted: its handler starts right after the reply.
        const run = this.starting;
        if (run) {
          this.starting = undefined;
          this.runHandler(run);
        }
      }
    });
    this.queue = next;
  }

  private async handleRequest(type: string, data: Buffer, wantReply: boolean): Promise<boolean> {
    const r = new WireReader(data);
    switch (type) {
      case 'env': {
        const name = r.string();
        const value = r.string();
        if (value === undefined || this.started || this.environ.length >= MAX_ENV) return false;
        const bytes = name!.length + value.length;
        const x = this.extra;
        if ((x.envBytes ?? 0) + bytes > MAX_ENV_BYTES) return false;
        x.envBytes = (x.envBytes ?? 0) + bytes;
        this.environ.push(`${name}=${value}`);
        return true;
      }
      case 'pty-req':
        return this.onPtyRequest(r);
      case 'window-change': {
        const w = readWindow(r);
        if (!w || !this.pty || w.width === 0 || w.height === 0) return false;
        this.pty.window = w;
        this.emit('window-change', { ...w });
        return true;
      }
      case 'shell':
        return this.onStart('shell', '');
      case 'exec': {
        const command = r.string();
        return command !== undefined && this.onStart('exec', command);
      }
      case 'subsystem': {
        const name = r.string();
        return name !== undefined && this.onStart('subsystem', name);
      }
      case 'signal': {
        const name = r.string();
        if (name === undefined) return false;
        this.deliverSignal(name.startsWith('SIG') ? name.slice(3) : name);
        return true;
      }
      case 'break': {
        const ms = r.uint32();
        if (ms === undefined || this.listenerCount('break') === 0) return false;
        this.emit('break', ms);
        return true;
      }
      case 'auth-agent-req@openssh.com':
        if (this.more?.agent !== true && (await agentForwardingAllowed(this.rt))) this.extra.agent = true;
        return this.more?.agent === true;
      default:
        void wantReply;
        return false;
    }
  }

  private async onPtyRequest(r: WireReader): Promise<boolean> {
    const pty = readPtyRequest(r);
    if (!pty || this.started || this.pty) return false;
    if (!isPermitted(this.context, 'pty')) return false; // no-pty, restrict, certificate without permit-pty
    const cb = this.rt.options.ptyCallback;
    if (cb && !(await callHook(this.rt, 'ptyCallback', cb, [this.context, pty], false, hookTimeout(this.rt)))) return false;
    if (this.started || this.channelClosed) return false;
    this.pty = pty;
    return true;
  }

  private async onStart(type: 'shell' | 'exec' | 'subsystem', arg: string): Promise<boolean> {
    if (this.started || this.channelClosed) return false;
    // A forced command (certificate or authorized_keys) replaces the request; environment= applies.
    ({ type, arg } = applySessionRestrictions({ permissions: this.context.permissions, environ: this.environ }, type, arg));
    let run: Handler | undefined;
    if (type === 'subsystem') {
      const reg = this.rt.options.subsystemHandlers;
      run = reg ? (Object.hasOwn(reg, arg) ? reg[arg] : reg['default']) : undefined;
    } else {
      run = this.rt.handler();
    }
    if (!run) return false;
    if (type === 'exec') this.rawCommand = arg;
    if (type === 'subsystem') this.subsystem = arg;
    const cb = this.rt.options.sessionRequestCallback;
    if (cb && !(await callHook(this.rt, 'sessionRequestCallback', cb, [this, type], false, hookTimeout(this.rt)))) {
      this.rawCommand = this.subsystem = '';
      return false;
    }
    if (this.started || this.channelClosed) return false;
    this.started = true;
    this.starting = run; // run by onRequest once the reply is out
    return true;
  }


  /** Runs the handler; when it returns (or its promise settles) the session exits with 0, or 1 if it threw. */
  private runHandler(handler: Handler): void {
    // Not an async function: an idle session's suspended handler should cost one promise
    // reaction, not a second suspended frame.
    try {
      const result = handler(this);
      const then = (result as PromiseLike<void> | undefined)?.then;
      if (typeof then !== 'function') return this.handlerDone(0);
      then.call(result, () => this.handlerDone(0), (err: unknown) => this.handlerDone(1, err));
    } catch (err) {
      this.handlerDone(1, err);
    }
  }

  private handlerDone(code: number, err?: unknown): void {
    if (code !== 0) this.rt.report(err);
    if (!this.exited) this.exit(code).catch(() => undefined);
  }

  private deliverSignal(name: Signal): void {
    if (this.listenerCount('signal') > 0 && !this.more?.signals?.length) {
      this.emit('signal', name);
      return;
    }
    const signals = (this.extra.signals ??= []);
    if (signals.length < SIGNAL_BUFFER) signals.push(name);
    if (this.listenerCount('signal') > 0) this.flushSignals();
  }

  private flushSignals(): void {
    const queue = this.more?.signals;
    while (queue && queue.length > 0 && this.listenerCount('signal') > 0) this.emit('signal', queue.shift()!);
  }
}

const RESOLVED = Promise.resolve();

/** Per-session state that most sessions never use (see `Session.more`). */
interface SessionExtras {
  permissionsCopy?: Permissions;
  commandCache?: string[];
  aborter?: LazySignal;
  stderrWriter?: ExtendedDataWriter;
  ptyOut?: PtyOutput;
  errCrlf?: CrlfEncoder;
  envBytes?: number;
  signals?: Signal[];
  closeWaiters?: Array<() => void>;
  agent?: boolean;
}

// The class keeps its public name Session; at run time it is named GlidesshSession (see renameForSsh2).
renameForSsh2(Session, 'GlidesshSession');
