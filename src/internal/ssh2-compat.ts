/**
 * EVERY use of ssh2 internals lives here. Each workaround names the ssh2 bug or gap it covers
 * (see shared/research/ssh2.md §3) and test/unit/ssh2-compat.test.ts fails loudly when the
 * pinned ssh2 stops behaving the way this file assumes.
 *
 * What glidessh takes over from ssh2's server (`IncomingClient`):
 * - CHANNEL_OPEN after auth: every channel type goes to our `channelHandlers` registry and we
 *   create the ssh2 `Channel` ourselves (ssh2 rejects unknown types, has no registry, and
 *   cannot reject with a reason text: #1222).
 * - CHANNEL_REQUEST on our channels: ssh2 drops every reply once shell/exec started (§3.7),
 *   loses pty modes and kills the connection on some (§3.10), auto-rejects `break` (§3.6).
 * - GLOBAL_REQUEST: ssh2 surfaces only five names (§3.6); we answer every one, in order.
 * - USERAUTH_REQUEST (observed only): the raw public-key signature, which ssh2 mangles (§3.1).
 * - CHANNEL_WINDOW_ADJUST: ssh2 resumes stdout *or* stderr and keeps a stale chunk (§3.9).
 * - SERVICE_REQUEST: ssh2 disconnects on a second one (paramiko/asyncssh send one per
 *   attempt, §1.3), and we hold it while an async banner is computed.
 * - Forwarding channels: ssh2 cannot open `auth-agent@openssh.com` to the client (§1.2), and
 *   its server channels send CLOSE right after EOF, which breaks half-close.
 *
 * @internal
 * @module
 */
import { Writable, type Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import handlers from 'ssh2/lib/protocol/handlers.js';
import protoUtils from 'ssh2/lib/protocol/utils.js';
import constants from 'ssh2/lib/protocol/constants.js';
import channelModule from 'ssh2/lib/Channel.js';
import { WireReader, WireWriter } from './wire.js';

const { MESSAGE, DISCONNECT_REASON } = constants;
const { Channel, MAX_WINDOW, PACKET_SIZE } = channelModule;

/** Disconnect reason codes (RFC 4253 §11.1) that glidessh sends. */
export const DISCONNECT = {
  PROTOCOL_ERROR: 2,
  KEY_EXCHANGE_FAILED: 3,
  BY_APPLICATION: 11,
  TOO_MANY_CONNECTIONS: 12,
  NO_MORE_AUTH_METHODS_AVAILABLE: 14,
} as const;

// ---------------------------------------------------------------------------------------------
// Shapes of the ssh2 objects we touch.

interface PacketWriter {
  allocStart: number;
  allocStartKEX: number;
  alloc(size: number, force?: boolean): Buffer;
  finalize(packet: Buffer, force?: boolean): Buffer;
}

/** The ssh2 `Protocol` of one connection. */
export interface Ssh2Protocol {
  _kex?: { sessionID?: Buffer };
  _strictMode?: boolean;
  _handlers: Record<string, ((...args: never[]) => unknown) | undefined>;
  _packetRW: { write: PacketWriter };
  _banner?: string;
  channelSuccess(id: number): void;
  channelFailure(id: number): void;
  channelOpenConfirm(remote: number, local: number, window: number, packet: number): void;
  channelOpenFail(remote: number, reason: number, desc: string): void;
  requestSuccess(data?: Buffer): void;
  requestFailure(): void;
  exitStatus(id: number, status: number): void;
  exitSignal(id: number, name: string, coreDumped: boolean, msg: string): void;
  serviceAccept(name: string): void;
}

interface ChannelManager {
  add(val?: unknown): number;
  update(id: number, val: unknown): void;
  get(id: number): unknown;
  remove(id: number): void;
}

/** ssh2's server-side connection object (`IncomingClient`). */
export interface Ssh2Connection {
  authenticated: boolean;
  _sock: Duplex;
  _protocol: Ssh2Protocol;
  _chanMgr: ChannelManager;
  on(event: string, listener: (...args: any[]) => void): this;
  once(event: string, listener: (...args: any[]) => void): this;
  end(): this;
}

interface ChannelEnd {
  id: number;
  window: number;
  packetSize: number;
  state: 'open' | 'eof' | 'closing' | 'closed';
}

/** An ssh2 server `Channel`: a Duplex with an extended-data `stderr` Writable. */
export interface Ssh2Channel extends Duplex {
  stderr: Writable;
  incoming: ChannelEnd;
  outgoing: ChannelEnd;
  subtype?: string;
  eof(): void;
  close(): void;
  _callbacks: Array<(failed: boolean) => void>;
  _waitWindow: boolean;
  _chunk?: Buffer;
  _chunkcb?: () => void;
  _chunkErr?: Buffer;
  _chunkcbErr?: () => void;
}

/** A CHANNEL_OPEN from the client, parsed by us. */
export interface RawChannelOpen {
  type: string;
  sender: number;
  window: number;
  packetSize: number;
  /** The type-specific fields, unparsed. */
  data: Buffer;
}

/** What glidessh does with the messages it takes over on one connection. */
export interface ConnectionHooks {
  /** Every CHANNEL_OPEN once authenticated. */
  channelOpen(open: RawChannelOpen): void;
  /** A CHANNEL_REQUEST; return false to leave it to ssh2 (not one of our channels). */
  channelRequest(recipient: number, type: string, wantReply: boolean, data: Buffer): boolean;
  /** Every GLOBAL_REQUEST once authenticated. */
  globalRequest(name: string, wantReply: boolean, data: Buffer): void;
  /** A public-key auth request that carries a signature. */
  signedPublicKey(signedData: Buffer, signature: Buffer): void;
  /** Resolves when SERVICE_REQUEST may be answered (the banner is ready). */
  serviceGate(): Promise<void> | undefined;
  /** The signature algorithms to advertise in EXT_INFO `server-sig-algs` (RFC 8308). */
  serverSigAlgs: readonly string[];
}

const kHooks = Symbol('glidessh.hooks');
type HookedProtocol = Ssh2Protocol & { [kHooks]?: ConnectionHooks };
type ConnWithProto = Ssh2Connection & { _protocol: HookedProtocol };
const owners = new WeakMap<object, Ssh2Connection>();

// ---------------------------------------------------------------------------------------------
// Global message interception. ssh2 dispatches every decrypted (and decompressed) payload
// through one module-level array; we wrap four entries once. A protocol that is not one of
// ours (for example an ssh2 client in the same process) goes straight to ssh2's handler.

let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  wrap(MESSAGE.CHANNEL_OPEN!, (proto, payload) => {
    const conn = owners.get(proto);
    if (!conn?.authenticated) return false;
    const r = new WireReader(payload, 1);
    const type = r.string();
    const sender = r.uint32();
    const window = r.uint32();
    const packetSize = r.uint32();
    if (type === undefined || sender === undefined || window === undefined || packetSize === undefined) return false;
    proto[kHooks]!.channelOpen({ type, sender, window, packetSize, data: r.rest() });
    return true;
  });
  wrap(MESSAGE.CHANNEL_REQUEST!, (proto, payload) => {
    const r = new WireReader(payload, 1);
    const recipient = r.uint32();
    const type = r.string();
    const wantReply = r.bool();
    if (wantReply === undefined) return false;
    return proto[kHooks]!.channelRequest(recipient!, type!, wantReply, r.rest());
  });
  wrap(MESSAGE.GLOBAL_REQUEST!, (proto, payload) => {
    if (!owners.get(proto)?.authenticated) return false;
    const r = new WireReader(payload, 1);
    const name = r.string();
    const wantReply = r.bool();
    if (wantReply === undefined) return false;
    proto[kHooks]!.globalRequest(name!, wantReply, r.rest());
    return true;
  });
  wrap(MESSAGE.USERAUTH_REQUEST!, (proto, payload) => {
    // Observe only: record the signature exactly as sent, then let ssh2 run its auth flow.
    const r = new WireReader(payload, 1);
    r.bytes(); // user
    r.bytes(); // service
    const method = r.string();
    if (method === 'publickey' && r.bool() === true) {
      r.bytes(); // algorithm
      r.bytes(); // key blob
      const blobEnd = payload.length - r.remaining;
      const signature = r.bytes();
      const sessionId = proto._kex?.sessionID;
      if (signature && sessionId) {
        const signed = new WireWriter().string(sessionId).raw(payload.subarray(0, blobEnd)).toBuffer();
        proto[kHooks]!.signedPublicKey(signed, Buffer.from(signature));
      }
    }
    return false;
  });
}

function wrap(type: number, hook: (proto: HookedProtocol, payload: Buffer) => boolean): void {
  const original = handlers[type];
  if (typeof original !== 'function') throw new Error(`ssh2 compat: no handler for message ${type}`);
  handlers[type] = (proto, payload) => {
    const p = proto as HookedProtocol;
    if (p[kHooks] !== undefined && hook(p, payload)) return undefined;
    return original(proto, payload);
  };
}

// ---------------------------------------------------------------------------------------------
// Per-connection setup.

/**
 * Builds an ssh2 `Server` used only as a connection factory (`injectSocket`). Server keepalive
 * is switched off: ssh2 forces 15 s × 3 and treats `keepaliveInterval <= 0` as "use the
 * default" (§3.4), so the largest timer delay Node allows stands for "never".
 */
export function createSsh2Server(config: {
  hostKeys: string[];
  ident: string;
  banner?: string;
  algorithms?: Record<string, string[]>;
}): ssh2.Server {
  install();
  return new ssh2.Server({ ...config, keepaliveInterval: 2 ** 31 - 1, keepaliveCountMax: 0 } as ssh2.ServerConfig);
}

/** The transport stream ssh2 reads from (not public on `IncomingClient`). */
export function connectionStream(conn: unknown): Duplex {
  return (conn as Ssh2Connection)._sock;
}

/** The exchange hash of the first key exchange, as hex; `""` before it completed. */
export function sessionIdHex(conn: Ssh2Connection): string {
  return conn._protocol._kex?.sessionID?.toString('hex') ?? '';
}

/** Whether strict key exchange (the Terrapin countermeasure) is in use. */
export function strictKex(conn: Ssh2Connection): boolean {
  return conn._protocol._strictMode === true;
}

/** Takes over the messages listed at the top of this file for one connection. */
export function hookConnection(conn: Ssh2Connection, hooks: ConnectionHooks): void {
  const proto = conn._protocol as HookedProtocol;
  proto[kHooks] = hooks;
  owners.set(proto, conn);
  const h = proto._handlers;

  // §3.9: resume both pending writes (alternating who goes first) and clear the stale chunk.
  let stderrFirst = false;
  h.CHANNEL_WINDOW_ADJUST = ((_p: unknown, recipient: number, amount: number) => {
    const ch = conn._chanMgr.get(recipient) as Ssh2Channel | undefined;
    if (typeof ch !== 'object' || ch === null || ch.outgoing === undefined) return;
    ch.outgoing.window += amount;
    if (!ch._waitWindow) return;
    ch._waitWindow = false;
    const out = [ch._chunk, ch._chunkcb] as const;
    const err = [ch._chunkErr, ch._chunkcbErr] as const;
    ch._chunk = ch._chunkcb = ch._chunkErr = ch._chunkcbErr = undefined;
    const resumeOut = (): void => {
      if (out[0]) writeChannelData(ch, out[0], out[1]!);
      else out[1]?.();
    };
    const resumeErr = (): void => {
      if (err[0]) {
        const stderr = ch.stderr as Writable & { sendRaw?: (b: Buffer, cb: () => void) => void };
        if (stderr.sendRaw) stderr.sendRaw(err[0], err[1]!);
        else stderr._write(err[0], null as never, err[1] as never);
      }
      else err[1]?.();
    };
    stderrFirst = !stderrFirst;
    if (stderrFirst) {
      resumeErr();
      resumeOut();
    } else {
      resumeOut();
      resumeErr();
    }
  }) as never;

  // ssh2 accepts CHANNEL_DATA beyond the window it granted: it only drops data when the window
  // is exactly 0, so a client that sends 32767-byte packets drives the window negative and every
  // later packet is buffered, without bound, for a handler that does not read. Drop a packet
  // that does not fit the window, as OpenSSH does ("rcvd too much data").
  const onData = h.CHANNEL_DATA as ((p: unknown, recipient: number, data: Buffer) => void) | undefined;
  if (onData) {
    h.CHANNEL_DATA = ((p: unknown, recipient: number, data: Buffer) => {
      const ch = conn._chanMgr.get(recipient) as Ssh2Channel | undefined;
      if (typeof ch === 'object' && ch !== null && ch.incoming !== undefined && data.length > ch.incoming.window) return;
      onData(p, recipient, data);
    }) as never;
  }

  // A client that confirms a channel we opened (forwarded-tcpip, agent) with a maximum packet
  // size of 0 would make ssh2's channel writers loop forever: close it and fail the open.
  const onConfirm = h.CHANNEL_OPEN_CONFIRMATION as ((p: unknown, info: { recipient: number; sender: number; packetSize: number }) => void) | undefined;
  const onOpenFailure = h.CHANNEL_OPEN_FAILURE as ((p: unknown, recipient: number, reason: number, desc: string) => void) | undefined;
  if (onConfirm && onOpenFailure) {
    h.CHANNEL_OPEN_CONFIRMATION = ((p: unknown, info: { recipient: number; sender: number; packetSize: number }) => {
      if (info.packetSize !== 0 || typeof conn._chanMgr.get(info.recipient) !== 'function') return onConfirm(p, info);
      (proto as Ssh2Protocol & { channelClose(id: number): void }).channelClose(info.sender);
      onOpenFailure(p, info.recipient, 2, 'maximum packet size 0');
    }) as never;
  }

  // §3.3: ssh2's EXT_INFO says "ecdsa-sha2-nistp521rsa-sha2-512" (a missing comma hides both
  // names from clients) and ignores what the server verifies. Send our own after the first
  // NEWKEYS, and tell ssh2 the client did not ask for one so it sends none.
  const p = proto as HookedProtocol & {
    _onHandshakeComplete: (...args: unknown[]) => unknown;
    _kex?: { remoteExtInfoEnabled?: boolean; sessionID?: Buffer };
  };
  const onHandshakeComplete = p._onHandshakeComplete;
  let firstKex = true;
  p._onHandshakeComplete = (...args: unknown[]) => {
    if (firstKex && p._kex?.remoteExtInfoEnabled) {
      p._kex.remoteExtInfoEnabled = false;
      const algs = hooks.serverSigAlgs.join(',');
      sendPayload(conn, new WireWriter().byte(MESSAGE.EXT_INFO!).uint32(1).string('server-sig-algs').string(algs).toBuffer(), false);
    }
    firstKex = false;
    return onHandshakeComplete(...args);
  };

  // §1.3: answer a repeated SERVICE_REQUEST for ssh-userauth instead of disconnecting, and
  // hold the first one (with everything auth-related behind it) until the banner is ready.
  const original = h.SERVICE_REQUEST as (p: unknown, service: string) => void;
  const held: Array<() => void> = [];
  let accepted = false;
  let open = true;
  const gate = (name: string): void => {
    const fn = h[name] as ((...args: unknown[]) => void) | undefined;
    if (!fn) return;
    h[name] = ((...args: unknown[]) => {
      if (open) return fn(...args);
      if (held.length >= 64) return conn.end();
      held.push(() => fn(...args));
    }) as never;
  };
  gate('USERAUTH_REQUEST');
  gate('USERAUTH_INFO_RESPONSE');
  h.SERVICE_REQUEST = ((p: unknown, service: string) => {
    if (accepted && service === 'ssh-userauth' && !conn.authenticated) {
      proto.serviceAccept(service);
      return;
    }
    const waitFor = hooks.serviceGate();
    const run = (): void => {
      accepted = service === 'ssh-userauth';
      original(p, service);
      open = true;
      for (const fn of held.splice(0)) fn();
    };
    if (!waitFor) return run();
    open = false;
    waitFor.then(run, run);
  }) as never;
}

/** Sends `keepalive@openssh.com` with want-reply; any answer (even a failure) proves the client alive. */
export function sendKeepalive(conn: Ssh2Connection): void {
  (conn._protocol as Ssh2Protocol & { ping(): void }).ping();
}

/** Channels of any kind open (or being opened) on the connection. */
export function openChannelCount(conn: Ssh2Connection): number {
  return (conn._chanMgr as ChannelManager & { _count: number })._count;
}

/** Sets the banner sent with SERVICE_ACCEPT (it must be set before the client asks). */
export function setBanner(conn: Ssh2Connection, banner: string): void {
  conn._protocol._banner = banner.endsWith('\r\n') ? banner : `${banner}\r\n`;
}

// ---------------------------------------------------------------------------------------------
// Channels.

/** Set while a {@link SessionChannelBase} runs ssh2's constructor. */
let constructingSession = false;

/**
 * ssh2's server `Channel` class, for glidessh's `Session` to extend: a session is the ssh2
 * channel itself rather than a second stream over it, so data is buffered and copied once.
 *
 * ssh2's constructor registers `finish`/`prefinish` listeners that send EOF and CLOSE as soon
 * as the writable side finishes (§1.5), which would lose the exit status; the session sends
 * EOF, exit status and CLOSE itself. They are not registered at all here: removing them
 * afterwards `delete`s keys of the stream's events object, which turns it into a slow
 * dictionary of about 400 bytes per session. See also {@link prepareSessionChannel}.
 */
export class SessionChannelBase extends (Channel as new (client: object, info: object, opts: { server: boolean }) => Duplex) {
  constructor(client: object, info: object) {
    constructingSession = true;
    try {
      super(client, info, { server: true });
    } finally {
      constructingSession = false;
    }
  }

  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    if (constructingSession && (event === 'finish' || event === 'prefinish')) return this;
    return super.on(event, listener);
  }
}

/** Builds the channel object for an accepted open; the default is a plain ssh2 Channel. */
export type ChannelFactory = (client: object, info: object) => Duplex;

/**
 * Confirms a channel open and returns the channel (`create` builds it, e.g. a Session), or
 * undefined when ids ran out.
 */
export function acceptChannel(
  conn: Ssh2Connection,
  open: RawChannelOpen,
  type: string,
  create: ChannelFactory = (client, info) => new Channel(client, info, { server: true }),
): Ssh2Channel | undefined {
  const local = conn._chanMgr.add();
  if (local === -1) return undefined;
  const info = {
    type,
    incoming: { id: local, window: MAX_WINDOW, packetSize: PACKET_SIZE, state: 'open' },
    outgoing: { id: open.sender, window: open.window, packetSize: open.packetSize, state: 'open' },
  };
  const channel = create(conn, info) as unknown as Ssh2Channel;
  conn._chanMgr.update(local, channel);
  conn._protocol.channelOpenConfirm(open.sender, local, MAX_WINDOW, PACKET_SIZE);
  return channel;
}

/** Refuses a channel open with a reason code (RFC 4254 §5.1) and a text. */
export function rejectChannel(conn: Ssh2Connection, open: RawChannelOpen, reason: number, text: string): void {
  conn._protocol.channelOpenFail(open.sender, reason, text);
}

/** Our channel id, which the client uses as `recipient`. */
export function localChannelId(channel: Ssh2Channel): number {
  return channel.incoming.id;
}

/** Answers a channel request (CHANNEL_SUCCESS / CHANNEL_FAILURE). */
export function replyChannelRequest(conn: Ssh2Connection, channel: Ssh2Channel, ok: boolean): void {
  // Nothing may follow our CHANNEL_CLOSE on a channel (RFC 4254 §5.3), a reply neither.
  if (channel.outgoing.state === 'closed' || channel.outgoing.state === 'closing') return;
  if (ok) conn._protocol.channelSuccess(channel.outgoing.id);
  else conn._protocol.channelFailure(channel.outgoing.id);
}

/** Answers a global request (REQUEST_SUCCESS with optional data / REQUEST_FAILURE). */
export function replyGlobalRequest(conn: Ssh2Connection, ok: boolean, data?: Buffer): void {
  if (ok) conn._protocol.requestSuccess(data);
  else conn._protocol.requestFailure();
}

/**
 * Sends a channel request to the client; with `wantReply`, `onReply` gets its answer (ssh2's
 * CHANNEL_SUCCESS/FAILURE handlers shift `_callbacks`; it is called with `false` if the
 * channel closes first). ssh2 has no public way to send an arbitrary channel request.
 */
export function sendChannelRequest(
  conn: Ssh2Connection,
  channel: Ssh2Channel,
  name: string,
  wantReply: boolean,
  data: Buffer,
  onReply: (ok: boolean) => void,
): boolean {
  if (channel.outgoing.state === 'closing' || channel.outgoing.state === 'closed') return false;
  const payload = new WireWriter()
    .byte(MESSAGE.CHANNEL_REQUEST!)
    .uint32(channel.outgoing.id)
    .string(name)
    .bool(wantReply)
    .raw(data)
    .toBuffer();
  sendPayload(conn, payload, false);
  if (wantReply) channel._callbacks.push((failed) => onReply(!failed));
  return true;
}

/**
 * Sends exit-status. ssh2's `Channel.exit()` does nothing once EOF was sent (§1.5), which makes
 * gliderlabs' "close stdout, then exit" impossible; the RFC allows it, so we send it directly.
 */
export function sendExitStatus(conn: Ssh2Connection, channel: Ssh2Channel, code: number): boolean {
  if (channel.outgoing.state !== 'open' && channel.outgoing.state !== 'eof') return false;
  conn._protocol.exitStatus(channel.outgoing.id, code >>> 0);
  return true;
}

/**
 * Sends exit-signal (see {@link sendExitStatus}); a leading `SIG` is dropped. Built here because
 * ssh2's `exitSignal()` throws for any name outside the RFC 4254 list, which RFC 4254 §6.10
 * allows ("XCPU", "name@domain"), and a throw there would leave the channel open.
 */
export function sendExitSignal(
  conn: Ssh2Connection,
  channel: Ssh2Channel,
  signal: string,
  coreDumped: boolean,
  message: string,
): boolean {
  if (channel.outgoing.state !== 'open' && channel.outgoing.state !== 'eof') return false;
  const name = signal.startsWith('SIG') && signal.length > 3 ? signal.slice(3) : signal;
  const payload = new WireWriter()
    .byte(MESSAGE.CHANNEL_REQUEST!)
    .uint32(channel.outgoing.id)
    .string('exit-signal')
    .bool(false)
    .string(name)
    .bool(coreDumped)
    .string(message)
    .string('')
    .toBuffer();
  sendPayload(conn, payload, false);
  return true;
}

/**
 * Makes a freshly built {@link SessionChannelBase} behave as a session needs (§1.5): a stream's
 * auto-destroy calls ssh2's `destroy()` (EOF + CLOSE) once both sides ended, which would lose
 * the exit status. The session sends EOF, exit status and CLOSE itself.
 */
export function prepareSessionChannel(channel: Duplex): void {
  const state = channel as unknown as {
    _readableState: { autoDestroy: boolean };
    _writableState: { autoDestroy: boolean };
  };
  state._readableState.autoDestroy = false;
  state._writableState.autoDestroy = false;
}

/**
 * ssh2's channel-close path (utils.js `onCHANNEL_CLOSE`) skips any server channel whose
 * `constructor.name` is "Session", meaning its own wrapper class; a subclass of Channel with
 * that name would never see its close. Gives such a class another `name`.
 */
export function renameForSsh2<T extends abstract new (...args: never[]) => unknown>(cls: T, name: string): T {
  Object.defineProperty(cls, 'name', { value: name, configurable: true });
  return cls;
}

/** Bytes the transport may hold unsent before channel writes wait for it to drain. */
const TRANSPORT_HIGH_WATER = 1024 * 1024;
/** Packets ssh2 may queue during a key re-exchange before channel writes wait (as x/crypto's fix). */
const KEX_QUEUE_MAX = 64;
const transportWaiters = new WeakMap<Ssh2Connection, Set<() => void>>();

function transportFull(conn: Ssh2Connection): boolean {
  const sock = conn._sock;
  if (sock.destroyed || !sock.writable) return false;
  const queued = (conn._protocol as { _queue?: unknown[] })._queue?.length ?? 0;
  return sock.writableLength >= TRANSPORT_HIGH_WATER || queued >= KEX_QUEUE_MAX;
}

/**
 * Wraps a channel write's callback so that it waits while the transport is full. ssh2 writes
 * every packet to the socket without looking at its backpressure, and queues packets without
 * limit during a key re-exchange; its channel writes complete as soon as the client's window
 * allows. A client that advertises a large window (up to 4 GiB, and more by WINDOW_ADJUST) and
 * stops reading, or never finishes a re-key, would make the server buffer everything a handler
 * writes — even one that honours 'drain' (the CVE-2025-22869 pattern). The wrapped callback
 * runs once the socket drained below 1 MiB and fewer than 64 packets wait for a re-key, or the
 * connection closed.
 */
export function afterTransportDrain(conn: Ssh2Connection, cb: () => void): () => void {
  return () => {
    if (!transportFull(conn)) return cb();
    let waiters = transportWaiters.get(conn);
    if (!waiters) {
      const set = new Set<() => void>();
      waiters = set;
      transportWaiters.set(conn, set);
      const wake = (): void => {
        for (const fn of [...set]) fn();
      };
      conn._sock.on('drain', wake);
      conn._sock.once('close', wake);
      conn.on('handshake', wake);
    }
    const set = waiters;
    const check = (): void => {
      if (transportFull(conn)) return;
      set.delete(check);
      cb();
    };
    set.add(check);
  };
}

/** Sends stdout data through ssh2's window-aware writer (bypassing a subclass's `_write`). */
export function writeChannelData(channel: Ssh2Channel, data: Buffer, cb: () => void): void {
  (Channel.prototype as unknown as { _write(d: Buffer, e: null, cb: () => void): void })._write.call(channel, data, null, cb);
}

/**
 * Copies the part of a write that ssh2 keeps for later (it waits for window space) when that
 * part is a view of `scratch`, memory the caller reuses (the pty kernel's output). ssh2 copies
 * what it sends into the packet at once; only the remainder it keeps (`_chunk`, `_chunkErr`)
 * outlives the call.
 */
export function ownPendingChunks(channel: Ssh2Channel, scratch: ArrayBufferLike): void {
  if (channel._chunk?.buffer === scratch) channel._chunk = Buffer.from(channel._chunk);
  if (channel._chunkErr?.buffer === scratch) channel._chunkErr = Buffer.from(channel._chunkErr);
}

/**
 * Completes writes that wait for window space on a channel that has closed: ssh2 keeps their
 * callbacks forever, so a writer waiting for 'drain' would hang.
 */
export function releasePendingWrites(channel: Ssh2Channel): void {
  const out = channel._chunkcb;
  const err = channel._chunkcbErr;
  channel._chunk = channel._chunkcb = channel._chunkErr = channel._chunkcbErr = undefined;
  channel._waitWindow = false;
  out?.();
  err?.();
}

/**
 * Extended data (stderr, RFC 4254 §5.2) to the client with ssh2's window accounting, shared
 * with stdout through the WINDOW_ADJUST handler above. `transform` runs once per chunk
 * (the pty's CRLF); a write after the channel stopped accepting data completes at once.
 */
export class ExtendedDataWriter extends Writable {
  constructor(
    private readonly channel: Ssh2Channel,
    private readonly conn: Ssh2Connection,
    private readonly transform: (chunk: Buffer) => Buffer,
    /** Runs after each transformed chunk was handed on (to copy what was kept of a transient one). */
    private readonly afterSend?: () => void,
  ) {
    super({ highWaterMark: MAX_WINDOW });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.channel.outgoing.state !== 'open') return cb();
    this.sendRaw(this.transform(chunk), afterTransportDrain(this.conn, cb));
    this.afterSend?.();
  }

  /** @internal Sends without transforming (also used to resume after a window adjust). */
  sendRaw(data: Buffer, cb: () => void): void {
    const ch = this.channel;
    const out = ch.outgoing;
    if (out.state !== 'open') return cb();
    const proto = this.conn._protocol as Ssh2Protocol & { channelExtData(id: number, d: Buffer, type: number): void };
    let p = 0;
    while (p < data.length && out.window > 0) {
      const n = Math.min(data.length - p, out.window, out.packetSize);
      proto.channelExtData(out.id, p === 0 && n === data.length ? data : data.subarray(p, p + n), 1);
      p += n;
      out.window -= n;
    }
    if (p === data.length) return cb();
    ch._waitWindow = true;
    ch._chunkErr = p === 0 ? data : data.subarray(p);
    ch._chunkcbErr = cb;
  }
}

/** Whether the client closed the channel (ssh2 marks the incoming side before it ends the stream). */
export function closedByClient(channel: Ssh2Channel): boolean {
  return channel.incoming.state === 'closed';
}

/** The largest data packet the client takes on this channel (its maximum packet size). */
export function maxPacketSize(channel: Ssh2Channel): number {
  return channel.outgoing.packetSize;
}

/** Whether our side may still send data on the channel. */
export function channelWritable(channel: Ssh2Channel): boolean {
  return channel.outgoing.state === 'open';
}

/**
 * Sends DISCONNECT with a reason code and a description, then ends the transport. ssh2's
 * `disconnect()` cannot carry a description (#752).
 */
export function disconnect(conn: Ssh2Connection, reason: number, description: string): void {
  const sock = conn._sock;
  if (!sock.writable) return;
  try {
    const payload = new WireWriter()
      .byte(MESSAGE.DISCONNECT!)
      .uint32(reason)
      .string(description)
      .string('')
      .toBuffer();
    sendPayload(conn, payload, true);
  } catch {
    // The transport is already failing; ending it below is all that is left to do.
  }
  sock.end();
}

function sendPayload(conn: Ssh2Connection, payload: Buffer, anytime: boolean): void {
  const w = conn._protocol._packetRW.write;
  const start = anytime ? w.allocStartKEX : w.allocStart;
  const packet = w.alloc(payload.length, anytime);
  payload.copy(packet, start);
  protoUtils.sendPacket(conn._protocol, w.finalize(packet, anytime), anytime);
}

// ---------------------------------------------------------------------------------------------
// Forwarding: channels the server opens to the client, and channels that half-close.

/** A channel the server asks the client to open (RFC 4254 §7.2; OpenSSH PROTOCOL §2.4, PROTOCOL.agent). */
export type ClientChannelOpen =
  | { type: 'forwarded-tcpip'; boundAddress: string; boundPort: number; originAddress: string; originPort: number }
  | { type: 'forwarded-streamlocal@openssh.com'; socketPath: string }
  | { type: 'auth-agent@openssh.com' };

type OpenCallback = ((err: Error | undefined, channel?: Ssh2Channel) => void) & { type?: string };

interface ForwardingConnection {
  forwardOut(boundAddr: string, boundPort: number, remoteAddr: string, remotePort: number, cb: OpenCallback): unknown;
  openssh_forwardOutStreamLocal(socketPath: string, cb: OpenCallback): unknown;
}

/**
 * Whether ssh2 can still send on this connection. Once the transport closed, ssh2 destructs
 * its `Protocol` (`_destruct` becomes `undefined` on the instance) and its ciphers drop every
 * later packet without a word, so a channel write that waits for window space would wait
 * forever and one that "fits" would report success for data that went nowhere.
 */
export function connectionUsable(conn: Ssh2Connection): boolean {
  return typeof (conn._protocol as unknown as { _destruct?: unknown })._destruct === 'function';
}

/**
 * Asks the client to open a channel; resolves with it (a plain ssh2 server Channel, prepared
 * with {@link prepareForwardChannel}) or rejects with the client's refusal, or when the
 * connection ends first (ssh2 then calls the pending callback with an error).
 * `forwarded-tcpip` and `forwarded-streamlocal@openssh.com` use ssh2's public `forwardOut` /
 * `openssh_forwardOutStreamLocal`. ssh2 has no way to open `auth-agent@openssh.com` (#792,
 * #1374, PR #781, all open: its private `openChannel` refuses the type), so we reserve the id
 * in `_chanMgr` with a callback whose `type` names the channel (ssh2's CHANNEL_OPEN_CONFIRMATION
 * and CHANNEL_OPEN_FAILURE handlers call it) and send the open with `_protocol.openssh_authAgent`.
 */
export function openClientChannel(conn: Ssh2Connection, open: ClientChannelOpen): Promise<Ssh2Channel> {
  return new Promise((resolve, reject) => {
    if (!connectionUsable(conn) || conn._sock.destroyed) return reject(new Error('the connection is closed'));
    const cb: OpenCallback = (err, channel) => {
      if (err || !channel) return reject(err ?? new Error('no channel'));
      prepareForwardChannel(conn, channel);
      resolve(channel);
    };
    const c = conn as unknown as ForwardingConnection;
    if (open.type === 'forwarded-tcpip') {
      c.forwardOut(open.boundAddress, open.boundPort, open.originAddress, open.originPort, cb);
    } else if (open.type === 'forwarded-streamlocal@openssh.com') {
      c.openssh_forwardOutStreamLocal(open.socketPath, cb);
    } else {
      cb.type = open.type;
      const id = conn._chanMgr.add(cb);
      if (id === -1) return reject(new Error('no free channel ids'));
      const proto = conn._protocol as unknown as { openssh_authAgent(id: number, window: number, packet: number): void };
      proto.openssh_authAgent(id, MAX_WINDOW, PACKET_SIZE);
    }
  });
}

/**
 * Makes a plain ssh2 server Channel fit for forwarding:
 * - half-close (RFC 4254 §5.3): ssh2 sends CLOSE right after EOF once a server channel's
 *   writable side finishes (`onFinish`), which would drop what the client still sends after the
 *   target finished. Here ending the writable side sends EOF only; the stream's auto-destroy
 *   (ssh2's `destroy()`: EOF + CLOSE) closes the channel once both directions have ended;
 * - a channel whose connection died (see {@link connectionUsable}) fails writes with an error
 *   and sends no EOF, CLOSE or window adjust; a write after the channel closed fails instead
 *   of waiting forever (ssh2 returns without calling its callback);
 * - writes wait while the transport is full ({@link afterTransportDrain}), as a session's do:
 *   a client that grants a huge window and stops reading cannot make the server buffer what
 *   the forward's target sends.
 */
export function prepareForwardChannel(conn: Ssh2Connection, channel: Duplex): void {
  const ch = channel as Ssh2Channel;
  ch.removeAllListeners('finish');
  ch.removeAllListeners('prefinish');
  ch.on('finish', () => ch.eof());
  ch.on('error', () => undefined);
  const proto = Channel.prototype as unknown as {
    eof(this: Ssh2Channel): void;
    close(this: Ssh2Channel): void;
    _read(this: Ssh2Channel, n: number): void;
    _write(this: Ssh2Channel, d: Buffer, e: BufferEncoding, cb: (err?: Error | null) => void): void;
  };
  const dead = (): boolean => {
    if (connectionUsable(conn)) return false;
    ch.outgoing.state = 'closed';
    return true;
  };
  ch.eof = () => void (dead() || proto.eof.call(ch));
  ch.close = () => void (dead() || proto.close.call(ch));
  ch._read = (n: number) => void (dead() || proto._read.call(ch, n));
  ch._write = (data: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void) => {
    if (dead() || ch.outgoing.state !== 'open') return cb(new Error('the channel is closed'));
    proto._write.call(ch, data, enc, afterTransportDrain(conn, cb));
  };
}

export { DISCONNECT_REASON };
