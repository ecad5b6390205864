/**
 * Test helpers for forwarding: a target that reads everything first and answers after the
 * client's EOF (so a forward that does not half-close loses the answer), a client side that
 * does the same from the other end, and checks that ports and socket files were released.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type ssh2 from 'ssh2';
import { connect, exec, startServer, type TestServer } from './harness.js';
import {
  defaultSessionHandler,
  directStreamLocalHandler,
  directTcpipHandler,
  ForwardedTcpHandler,
  ForwardedUnixHandler,
  type ServerOptions,
} from '../../src/index.js';

export const MiB = 1024 * 1024;

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** What a {@link halfCloseTarget} saw on one connection. */
export interface TargetRecord {
  /** SHA-256 of everything received before EOF. */
  received: string;
  bytes: number;
}

export interface HalfCloseTarget {
  server: Server;
  /** TCP port, or the socket path for a Unix target. */
  port: number;
  path: string | undefined;
  /** One entry per connection, added when its EOF arrived. */
  records: TargetRecord[];
  /** Connections accepted so far. */
  accepted: number;
  /** What the target sends back after EOF (the same bytes for every connection). */
  answer: Buffer;
  close(): Promise<void>;
}

/**
 * A TCP (or Unix, with `path`) server that reads a connection until EOF, records the SHA-256
 * of what came, then writes `answerBytes` of random data and ends. With `answerFirst` it
 * writes the answer and ends its side at once, then reads until EOF: a forward that closes
 * the channel when one direction ends loses what the client still sends.
 */
export async function halfCloseTarget(answerBytes: number, path?: string, answerFirst = false): Promise<HalfCloseTarget> {
  const answer = randomBytes(answerBytes);
  const sockets = new Set<Socket>();
  const t: HalfCloseTarget = {
    server: createServer({ allowHalfOpen: true }, (sock) => {
      t.accepted++;
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.on('error', () => undefined);
      const hash = createHash('sha256');
      let bytes = 0;
      sock.on('data', (d: Buffer) => {
        hash.update(d);
        bytes += d.length;
      });
      if (answerFirst) sock.end(answer);
      sock.on('end', () => {
        t.records.push({ received: hash.digest('hex'), bytes });
        if (!answerFirst) sock.end(answer);
      });
    }),
    port: 0,
    path,
    records: [],
    accepted: 0,
    answer,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => t.server.close(() => r()));
    },
  };
  if (path) t.server.listen(path);
  else t.server.listen(0, '127.0.0.1');
  await once(t.server, 'listening');
  if (!path) t.port = (t.server.address() as AddressInfo).port;
  return t;
}

/**
 * The client end of a half-close exchange over `stream`: writes `data` (with backpressure),
 * ends, and resolves with the SHA-256 and length of everything read back until EOF.
 */
export async function exchange(stream: Duplex, data: Buffer): Promise<{ hash: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  stream.on('data', (d: Buffer) => {
    hash.update(d);
    bytes += d.length;
  });
  const ended = new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  const step = 64 * 1024;
  for (let off = 0; off < data.length; off += step) {
    if (!stream.write(data.subarray(off, off + step))) await once(stream, 'drain');
  }
  stream.end();
  await ended;
  return { hash: hash.digest('hex'), bytes };
}

/**
 * The other order: reads `stream` until the far side's EOF, and only then writes `data` and
 * ends. Resolves with what was read; the far side must still receive all of `data`.
 */
export async function sendAfterEnd(stream: Duplex, data: Buffer): Promise<{ hash: string; bytes: number }> {
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  await once(stream, 'end');
  const step = 64 * 1024;
  for (let off = 0; off < data.length; off += step) {
    if (!stream.write(data.subarray(off, off + step))) await once(stream, 'drain');
  }
  stream.end();
  const all = Buffer.concat(chunks);
  return { hash: sha256(all), bytes: all.length };
}

/** Whether a TCP port on 127.0.0.1 can be bound (nobody listens on it any more). */
export async function portFree(port: number): Promise<boolean> {
  const s = createServer();
  try {
    s.listen(port, '127.0.0.1');
    await once(s, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    if (s.listening) await new Promise<void>((r) => s.close(() => r()));
  }
}

/** Whether a file exists at `path`. */
export const exists = (path: string): boolean => existsSync(path);

/** Every forwarding handler registered; the callbacks come from `options`. */
export function forwardingOptions(options: ServerOptions = {}): ServerOptions {
  const tcp = new ForwardedTcpHandler();
  const unix = new ForwardedUnixHandler();
  return {
    channelHandlers: {
      session: defaultSessionHandler,
      'direct-tcpip': directTcpipHandler,
      'direct-streamlocal@openssh.com': directStreamLocalHandler,
    },
    requestHandlers: {
      'tcpip-forward': tcp.handleRequest,
      'cancel-tcpip-forward': tcp.handleRequest,
      'streamlocal-forward@openssh.com': unix.handleRequest,
      'cancel-streamlocal-forward@openssh.com': unix.handleRequest,
    },
    handler: async (s) => void s.write('ok\n'),
    ...options,
  };
}

/** Starts a server and an ssh2 client; both are closed after the test. */
export async function setup(
  t: TestContext,
  options: ServerOptions,
  clientConfig: ssh2.ConnectConfig = {},
): Promise<{ srv: TestServer; client: ssh2.Client }> {
  const srv = await startServer(options);
  const client = await connect(srv.port, clientConfig);
  client.on('error', () => undefined);
  t.after(async () => {
    client.end();
    await srv.close();
  });
  return { srv, client };
}

/** A {@link halfCloseTarget} closed after the test. */
export async function target(t: TestContext, answerBytes: number, path?: string): Promise<HalfCloseTarget> {
  const tg = await halfCloseTarget(answerBytes, path);
  t.after(() => tg.close());
  return tg;
}

/** A channel open refusal as ssh2's client reports it. */
export type OpenFailure = Error & { reason?: number };
/** Resolves with the error of a channel open that must fail. */
export const failure = (p: Promise<unknown>): Promise<OpenFailure> =>
  p.then(
    () => assert.fail('expected the open to fail'),
    (err: OpenFailure) => err,
  );

/** The session still works: an exec prints "ok". */
export async function assertSessionWorks(client: ssh2.Client): Promise<void> {
  const r = await exec(client, 'x');
  assert.equal(r.stdout.toString(), 'ok\n');
}
