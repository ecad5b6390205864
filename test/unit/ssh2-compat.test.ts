/**
 * Fails loudly when ssh2 changes. src/internal/ssh2-compat.ts reaches into ssh2's internals
 * and works around ssh2 bugs (shared/research/ssh2.md §3). This file checks
 *  - the pinned version and the shape of every internal we touch, and
 *  - that the pinned ssh2, used plainly (a bare `ssh2.Server`, no glidessh), still has each bug
 *    we work around. When one of those tests fails, ssh2 fixed the bug: drop the workaround.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import handlers from 'ssh2/lib/protocol/handlers.js';
import protoUtils from 'ssh2/lib/protocol/utils.js';
import constants from 'ssh2/lib/protocol/constants.js';
import channelModule from 'ssh2/lib/Channel.js';
import { generateHostKey } from '../../src/host-keys.js';
import { parseTerminalModes } from '../../src/pty.js';
import { ownPendingChunks } from '../../src/internal/ssh2-compat.js';
import { channelRequest, openChannel, ptyData, sendRaw, Wire } from '../helpers/raw.js';
import { collect, connect, delay, startServer, waitFor, within } from '../helpers/harness.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const require = createRequire(import.meta.url);
const hostKey = generateHostKey().text;

// ------------------------------------------------------------------------------------ helpers

interface Plain {
  server: ssh2.Server;
  port: number;
  /** Every IncomingClient, in accept order. */
  conns: Any[];
  close(): Promise<void>;
}

/**
 * A bare ssh2 server (no glidessh) on 127.0.0.1:0 that lets everyone in with `none` unless
 * `setup` adds its own 'authentication' listener.
 */
async function plainServer(setup: (conn: Any) => void = () => undefined, config: Partial<ssh2.ServerConfig> = {}): Promise<Plain> {
  const conns: Any[] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey], ...config } as ssh2.ServerConfig, (conn: Any) => {
    conns.push(conn);
    conn.on('error', () => undefined);
    setup(conn);
    if (conn.listenerCount('authentication') === 0) conn.on('authentication', (ctx: Any) => ctx.accept());
  });
  server.on('error', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    conns,
    close: async () => {
      for (const c of conns) {
        try {
          c._sock.destroy();
        } catch {
          // already gone
        }
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Accepts every session and hands it to `onSession`. */
function sessions(onSession: (session: Any) => void): (conn: Any) => void {
  return (conn) => conn.on('session', (accept: () => Any) => onSession(accept()));
}

function clientClosed(client: ssh2.Client): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}


const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Starts a plain server and a connected ssh2 client; both are closed after the file. */
async function plainPair(
  setup?: (conn: Any) => void,
  config?: Partial<ssh2.ServerConfig>,
  clientConfig?: ssh2.ConnectConfig,
): Promise<{ plain: Plain; client: ssh2.Client; done(): Promise<void> }> {
  const plain = await plainServer(setup, config);
  const client = await connect(plain.port, clientConfig);
  client.on('error', () => undefined);
  const done = async (): Promise<void> => {
    client.end();
    await plain.close();
  };
  cleanups.push(done);
  return { plain, client, done };
}

// ------------------------------------------------------------------------------------ the pin

describe('the pinned ssh2', () => {
  it('is 1.17.0, the version the workarounds in ssh2-compat.ts were checked against', () => {
    const pkg = require('ssh2/package.json') as { version: string };
    assert.equal(
      pkg.version,
      '1.17.0',
      'ssh2 changed version: re-check every test in this file and every workaround in src/internal/ssh2-compat.ts',
    );
  });
});

// ------------------------------------------------------------------------------------ module internals

describe('ssh2 module internals that ssh2-compat.ts imports', () => {
  it('protocol/handlers.js exports the message dispatch array, with functions at 50, 80, 90, 98', () => {
    assert.ok(Array.isArray(handlers));
    for (const type of [50, 80, 90, 98]) assert.equal(typeof handlers[type], 'function', `handlers[${type}]`);
  });

  it('protocol/constants.js has the message numbers we send and hook', () => {
    const { MESSAGE } = constants;
    assert.equal(MESSAGE.DISCONNECT, 1);
    assert.equal(MESSAGE.SERVICE_REQUEST, 5);
    assert.equal(MESSAGE.USERAUTH_REQUEST, 50);
    assert.equal(MESSAGE.GLOBAL_REQUEST, 80);
    assert.equal(MESSAGE.CHANNEL_OPEN, 90);
    assert.equal(MESSAGE.CHANNEL_REQUEST, 98);
    assert.equal(typeof constants.DISCONNECT_REASON, 'object');
  });

  it('Channel.js exports Channel, MAX_WINDOW (2 MiB) and PACKET_SIZE (32 KiB)', () => {
    assert.equal(typeof channelModule.Channel, 'function');
    assert.equal(channelModule.MAX_WINDOW, 2 * 1024 * 1024);
    assert.equal(channelModule.PACKET_SIZE, 32 * 1024);
  });

  it('protocol/utils.js has sendPacket', () => {
    assert.equal(typeof protoUtils.sendPacket, 'function');
  });

  it('Protocol dispatches through the module-level handlers array at receive time (ssh2-compat wraps entries)', async () => {
    const original = handlers[90]!;
    let seen = 0;
    const spy: typeof original = (proto, payload) => {
      seen++;
      return original(proto, payload);
    };
    handlers[90] = spy;
    try {
      const { client, done } = await plainPair(sessions(() => undefined));
      await openChannel(client, 'session');
      assert.ok(seen >= 1, 'the replaced CHANNEL_OPEN handler ran');
      await done();
    } finally {
      // Only undo our own change (should glidessh have wrapped the spy meanwhile, keep its wrapper).
      if (handlers[90] === spy) handlers[90] = original;
    }
  });
});

describe('IncomingClient internals that ssh2-compat.ts uses', () => {
  it('has _sock (the injected stream), _chanMgr, _protocol with _handlers, _packetRW, _kex and the reply methods', async () => {
    // Like glidessh: our own listener, sockets handed over with injectSocket.
    let injected: net.Socket | undefined;
    let ready!: (conn: Any) => void;
    const readyConn = new Promise<Any>((r) => (ready = r));
    const srv = new ssh2.Server({ hostKeys: [hostKey] }, (conn: Any) => {
      conn.on('error', () => undefined);
      conn.on('authentication', (ctx: Any) => ctx.accept());
      conn.on('ready', () => ready(conn));
      // Before the handshake: _sock is what we injected; our SERVICE_REQUEST hook needs these.
      assert.equal(conn._sock, injected, 'conn._sock is the injected stream (connectionStream)');
      const h = conn._protocol._handlers;
      for (const name of ['CHANNEL_WINDOW_ADJUST', 'SERVICE_REQUEST', 'USERAUTH_REQUEST', 'USERAUTH_INFO_RESPONSE']) {
        assert.equal(typeof h[name], 'function', `_protocol._handlers.${name}`);
      }
      assert.ok(
        h.SERVICE_REQUEST.toString().includes('acceptedAuthSvc'),
        'SERVICE_REQUEST still refuses a second request (§1.3); see the behaviour test below',
      );
      assert.ok('_banner' in conn._protocol, '_protocol._banner exists (setBanner writes it)');
    });
    srv.on('error', () => undefined);
    const own = net.createServer((sock) => {
      injected = sock;
      srv.injectSocket(sock);
    });
    own.listen(0, '127.0.0.1');
    await once(own, 'listening');
    const client = await connect((own.address() as net.AddressInfo).port);
    try {
      const conn = await readyConn;
      assert.equal(conn.authenticated, true);
      assert.ok(conn._sock instanceof net.Socket);
      for (const m of ['add', 'update', 'get', 'remove']) assert.equal(typeof conn._chanMgr[m], 'function', `_chanMgr.${m}`);
      const p = conn._protocol;
      const w = p._packetRW.write;
      assert.equal(typeof w.allocStart, 'number');
      assert.equal(typeof w.allocStartKEX, 'number');
      assert.equal(typeof w.alloc, 'function');
      assert.equal(typeof w.finalize, 'function');
      assert.ok(Buffer.isBuffer(p._kex.sessionID), '_kex.sessionID after the handshake');
      assert.ok(p._kex.sessionID.length >= 20);
      assert.equal(typeof p._strictMode, 'boolean');
      for (const m of [
        'channelSuccess',
        'channelFailure',
        'channelOpenConfirm',
        'channelOpenFail',
        'requestSuccess',
        'requestFailure',
        'exitStatus',
        'exitSignal',
        'serviceAccept',
        'openssh_authAgent',
      ]) {
        assert.equal(typeof p[m], 'function', `_protocol.${m}`);
      }
      // _chanMgr.add() hands out ids; update/get/remove store and drop what we put there.
      const id = conn._chanMgr.add();
      assert.equal(typeof id, 'number');
      assert.notEqual(id, -1);
      const marker = { marker: true };
      conn._chanMgr.update(id, marker);
      assert.equal(conn._chanMgr.get(id), marker);
      conn._chanMgr.remove(id);
      assert.equal(conn._chanMgr.get(id), undefined);
    } finally {
      client.end();
      own.close();
      srv.close();
    }
  });

  it('a server Channel has the fields our window-adjust and sendRequest code touch', async () => {
    let ch: Any;
    const { client, done } = await plainPair(
      sessions((s) =>
        s.on('exec', (accept: () => Any) => {
          ch = accept();
          ch.end('ok');
        }),
      ),
    );
    await new Promise<void>((resolve, reject) =>
      client.exec('x', (err, c) => (err ? reject(err) : c.on('close', () => resolve()).resume())),
    );
    for (const f of ['_waitWindow', '_chunk', '_chunkcb', '_chunkErr', '_chunkcbErr']) assert.ok(f in ch, `channel.${f}`);
    assert.ok(Array.isArray(ch._callbacks), 'channel._callbacks');
    for (const end of ['incoming', 'outgoing']) {
      assert.deepEqual(Object.keys(ch[end]).sort(), ['id', 'packetSize', 'state', 'window']);
    }
    assert.equal(typeof ch._write, 'function');
    assert.equal(typeof ch.stderr._write, 'function');
    assert.equal(typeof ch.eof, 'function');
    await done();
  });

  it('a _protocol._banner set before SERVICE_REQUEST is sent to the client (setBanner)', async () => {
    let banner: string | undefined;
    const plain = await plainServer((conn) => {
      conn._protocol._banner = 'computed per connection\r\n';
    });
    cleanups.push(() => plain.close());
    const client = new ssh2.Client();
    client.on('banner', (text: string) => (banner = text));
    const ready = once(client, 'ready');
    client.connect({ host: '127.0.0.1', port: plain.port, username: 'u' });
    await ready;
    client.end();
    assert.equal(banner, 'computed per connection\r\n');
  });
});

// ------------------------------------------------------------------------------------ the bugs

describe('ssh2 Channel behaviour the Session subclass relies on', () => {
  const fakeInfo = () => ({
    type: 'session',
    incoming: { id: 0, window: channelModule.MAX_WINDOW, packetSize: channelModule.PACKET_SIZE, state: 'open' },
    outgoing: { id: 0, window: 0, packetSize: channelModule.PACKET_SIZE, state: 'open' },
  });

  it('a server Channel registers one finish and one prefinish listener (the EOF+CLOSE that prepareSessionChannel removes)', () => {
    const ch = new channelModule.Channel({}, fakeInfo(), { server: true }) as Any;
    assert.equal(ch.listenerCount('finish'), 1);
    assert.equal(ch.listenerCount('prefinish'), 1);
    assert.equal(ch.listeners('finish')[0], ch.listeners('prefinish')[0]);
    assert.match(String(ch.listeners('finish')[0]), /this\.eof\(\)[\s\S]*this\.close\(\)/);
    assert.equal(ch._readableState.autoDestroy, true, 'auto-destroy is on by default (prepareSessionChannel turns it off)');
    assert.equal(typeof ch.destroy, 'function');
    assert.match(String(ch.destroy), /this\.end\(\)[\s\S]*this\.close\(\)/, "ssh2's destroy() sends EOF and CLOSE");
  });

  it("onCHANNEL_CLOSE skips server channels whose constructor.name is 'Session' (why Session is renamed at run time)", () => {
    const src = readFileSync(require.resolve('ssh2/lib/utils.js'), 'utf8');
    assert.match(src, /channel\.server && channel\.constructor\.name === 'Session'/);
  });

  it('Channel.prototype._write keeps a chunk that does not fit the window in _chunk/_chunkcb (releasePendingWrites)', () => {
    const sent: Buffer[] = [];
    const client = { _protocol: { channelData: (_id: number, d: Buffer) => sent.push(d) } };
    const info = fakeInfo();
    info.outgoing.window = 10;
    const ch = new channelModule.Channel(client, info, { server: true }) as Any;
    let called = false;
    ch._write(Buffer.alloc(25), null, () => (called = true));
    assert.equal(sent.reduce((n, b) => n + b.length, 0), 10);
    assert.equal(ch._chunk.length, 15);
    assert.equal(typeof ch._chunkcb, 'function');
    assert.equal(ch._waitWindow, true);
    assert.equal(called, false);
  });

  it('Channel.prototype._write keeps a view of the caller\'s buffer, not a copy (ownPendingChunks copies it)', () => {
    const client = { _protocol: { channelData: () => undefined } };
    const info = fakeInfo();
    info.outgoing.window = 10;
    const ch = new channelModule.Channel(client, info, { server: true }) as Any;
    const data = Buffer.alloc(25);
    ch._write(data, null, () => undefined);
    assert.equal(ch._chunk.buffer, data.buffer, 'ssh2 now copies the remainder itself: ownPendingChunks may go');
    ownPendingChunks(ch, data.buffer);
    assert.notEqual(ch._chunk.buffer, data.buffer);
    assert.equal(ch._chunk.length, 15);
  });

  it('Protocol.channelData and channelExtData copy the data into the packet before returning (the pty kernel reuses its output memory)', async () => {
    const Protocol = require('ssh2/lib/protocol/Protocol.js') as Any;
    const src = Protocol.prototype.channelData.toString() + Protocol.prototype.channelExtData.toString();
    assert.match(src, /packet\.set\(data, p \+= 4\)/);
    assert.doesNotMatch(src, /setImmediate|nextTick|Promise/);
  });
});

describe('ssh2 bugs glidessh works around (each test fails once ssh2 fixes the bug)', () => {
  // §3.10
  it('(a) pty-req modes are lost: a plain ssh2 server reports modes as {}', async () => {
    const seen: Any[] = [];
    const { client } = await plainPair(
      sessions((s) =>
        s.on('pty', (accept: (() => void) | undefined, _reject: unknown, info: Any) => {
          seen.push(info);
          accept?.();
        }),
      ),
    );
    const modes = Buffer.from('01000000033500000001800000960000', 'hex'); // VINTR=3 ECHO=1 ISPEED=38400 END
    const ch = await openChannel(client, 'session');
    assert.equal(await channelRequest(client, ch, 'pty-req', true, ptyData('xterm', 80, 24, modes), 2000), true);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].term, 'xterm');
    assert.deepEqual(
      seen[0].modes,
      {},
      'ssh2 now decodes pty modes: drop the pty-req takeover in ssh2-compat.ts (§3.10) if it matches parseTerminalModes',
    );
    // What the modes really were (glidessh's own parser):
    assert.deepEqual({ ...parseTerminalModes(modes) }, { VINTR: 3, ECHO: 1, TTY_OP_ISPEED: 38400 });
  });

  it('(a) pty-req modes whose second byte is not 0 kill the connection on a plain ssh2 server', async () => {
    const { client } = await plainPair(sessions((s) => s.on('pty', (accept: (() => void) | undefined) => accept?.())));
    const gone = clientClosed(client);
    const ch = await openChannel(client, 'session');
    const modes = Buffer.from('350100000000', 'hex'); // ECHO=0x01000000, END
    void channelRequest(client, ch, 'pty-req', true, ptyData('xterm', 80, 24, modes), 2000).catch(() => undefined);
    await within(gone, 2000, 'ssh2 dropping the connection over valid pty modes');
  });

  // §3.7
  it('(b) a want-reply channel request after shell gets no reply from a plain ssh2 server', async () => {
    const envs: string[] = [];
    const { client } = await plainPair(
      sessions((s) => {
        s.on('env', (accept: (() => void) | undefined, _r: unknown, info: { key: string }) => {
          envs.push(info.key);
          accept?.();
        });
        s.on('shell', (accept: () => Any) => accept());
      }),
    );
    const ch = await openChannel(client, 'session');
    const env = (k: string): Buffer => new Wire().str(k).str('v').buf();
    assert.equal(await channelRequest(client, ch, 'env', true, env('BEFORE'), 2000), true, 'env before shell is answered');
    assert.equal(await channelRequest(client, ch, 'shell', true, Buffer.alloc(0), 2000), true);
    await assert.rejects(
      channelRequest(client, ch, 'env', true, env('AFTER'), 300),
      /no reply to env/,
      'ssh2 now answers requests after shell: the channel-request takeover for §3.7 may go',
    );
    assert.deepEqual(envs, ['BEFORE', 'AFTER'], 'the event fired, but no reply was sent');
  });

  // §3.4
  it('(c) server keepalive cannot be switched off: keepaliveInterval 0 falls back to 15000 ms', async () => {
    assert.equal(ssh2.Server.KEEPALIVE_CLIENT_INTERVAL, 15000);
    assert.equal(ssh2.Server.KEEPALIVE_CLIENT_COUNT_MAX, 3);
    const intervals = async (config: Partial<ssh2.ServerConfig>): Promise<number[]> => {
      const delays: number[] = [];
      const real = globalThis.setInterval;
      let readyAt: Promise<void> | undefined;
      const plain = await plainServer((conn) => {
        // ssh2 registers its keepalive 'ready' listener in the constructor, before ours.
        readyAt = new Promise((resolve) => conn.once('ready', () => resolve()));
      }, config);
      (globalThis as Any).setInterval = (fn: () => void, ms: number) => {
        // Only ssh2's server timers count (not the test runner's or anyone else's).
        if (/ssh2[\\/]lib[\\/]server\.js/.test(new Error().stack ?? '')) delays.push(ms);
        return real(fn, ms);
      };
      try {
        const client = await connect(plain.port);
        await readyAt;
        client.end();
      } finally {
        globalThis.setInterval = real;
        await plain.close();
      }
      return delays;
    };
    assert.deepEqual(
      await intervals({ keepaliveInterval: 0 }),
      [15000],
      'keepaliveInterval 0 can now disable keepalive: createSsh2Server may pass 0 instead of 2**31-1',
    );
    // What createSsh2Server relies on: a huge interval is taken as is.
    assert.deepEqual(await intervals({ keepaliveInterval: 2 ** 31 - 1, keepaliveCountMax: 0 }), [2 ** 31 - 1]);
  });

  // §3.9
  it('(d) writing to stdout and stderr concurrently stalls stderr on a plain ssh2 server', async () => {
    const TOTAL = 8 * 1024 * 1024;
    const CHUNK = 64 * 1024;
    let serverCh: Any;
    const { client } = await plainPair(
      sessions((s) =>
        s.on('exec', (accept: () => Any) => {
          const ch = accept();
          serverCh = ch;
          const out = Buffer.alloc(CHUNK, 0x6f);
          const err = Buffer.alloc(CHUNK, 0x65);
          let o = 0;
          let e = 0;
          const pumpOut = (): void => {
            while (o < TOTAL / CHUNK) {
              o++;
              if (!ch.write(out)) return void ch.once('drain', pumpOut);
            }
          };
          const pumpErr = (): void => {
            while (e < TOTAL / CHUNK) {
              e++;
              if (!ch.stderr.write(err)) return void ch.stderr.once('drain', pumpErr);
            }
          };
          pumpOut();
          pumpErr();
        }),
      ),
    );
    let outBytes = 0;
    let errBytes = 0;
    await new Promise<void>((resolve, reject) =>
      client.exec('both', (err, ch) => {
        if (err) return reject(err);
        ch.on('data', (d: Buffer) => (outBytes += d.length));
        ch.stderr.on('data', (d: Buffer) => (errBytes += d.length));
        resolve();
      }),
    );
    // Wait for stdout to finish (or 2 s), then give stderr a fair chance to catch up.
    await waitFor(() => outBytes === TOTAL || errBytes === TOTAL, 2000, 'output').catch(() => undefined);
    await delay(300);
    const stalled = errBytes < TOTAL || outBytes < TOTAL;
    assert.ok(
      stalled,
      `ssh2 delivered all of stdout (${outBytes}) and stderr (${errBytes}): the CHANNEL_WINDOW_ADJUST ` +
        'workaround for §3.9 in ssh2-compat.ts may go',
    );
    // The stall's signature (what the workaround resumes): a stderr chunk left pending, with
    // _waitWindow already cleared, although the peer's window has room for it.
    assert.ok(serverCh._chunkErr !== undefined || serverCh._chunk !== undefined, 'a write is left pending');
    assert.equal(serverCh._waitWindow, false);
    assert.ok(serverCh.outgoing.window >= CHUNK, `window ${serverCh.outgoing.window} has room`);
  });

  it('(d) ... while glidessh delivers both streams completely', async () => {
    const TOTAL = 8 * 1024 * 1024;
    const ts = await startServer({
      handler: async (s) => {
        const chunk = (c: number): Buffer => Buffer.alloc(64 * 1024, c);
        const pump = async (w: NodeJS.WritableStream, c: number): Promise<void> => {
          for (let i = 0; i < TOTAL / (64 * 1024); i++) {
            if (!w.write(chunk(c))) await once(w as Any, 'drain');
          }
        };
        await Promise.all([pump(s, 0x6f), pump(s.stderr, 0x65)]);
      },
    });
    const client = await connect(ts.port);
    try {
      const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
        client.exec('both', (err, c) => (err ? reject(err) : resolve(c))),
      );
      const r = await within(collect(ch), 2500, 'both streams');
      assert.equal(r.stdout.length, TOTAL);
      assert.equal(r.stderr.length, TOTAL);
      assert.equal(r.code, 0);
    } finally {
      client.end();
      await ts.close();
    }
  });

  // §1.3
  it('(e) a second SERVICE_REQUEST makes a plain ssh2 server disconnect', async () => {
    const plain = await plainServer();
    cleanups.push(() => plain.close());
    const errors: Array<Error & { code?: unknown }> = [];
    const client = new ssh2.Client();
    client.on('error', (err) => errors.push(err));
    const gone = clientClosed(client);
    let authAsked = 0;
    client.connect({
      host: '127.0.0.1',
      port: plain.port,
      username: 'u',
      // Called after SERVICE_ACCEPT: ask for the service again (paramiko/asyncssh do, per attempt).
      authHandler: ((_methods: unknown, _partial: unknown, _cb: unknown) => {
        if (authAsked++ === 0) sendRaw(client, new Wire().byte(5).str('ssh-userauth').buf());
      }) as Any,
    });
    await within(gone, 2000, 'ssh2 disconnecting on the second SERVICE_REQUEST');
    assert.ok(
      errors.some((e) => e.code === constants.DISCONNECT_REASON.SERVICE_NOT_AVAILABLE),
      `disconnect reason SERVICE_NOT_AVAILABLE; got ${errors.map((e) => e.message).join(', ')}`,
    );
  });

  it('(e) ... while glidessh answers it and authentication goes on', async () => {
    const ts = await startServer({ passwordHandler: (_ctx, pw) => pw === 'pw', handler: (s) => void s.write('in\n') });
    const client = new ssh2.Client();
    client.on('error', () => undefined);
    const ready = once(client, 'ready');
    let asked = 0;
    client.connect({
      host: '127.0.0.1',
      port: ts.port,
      username: 'u',
      authHandler: ((_m: unknown, _p: unknown, cb: (a: unknown) => void) => {
        if (asked++ === 0) sendRaw(client, new Wire().byte(5).str('ssh-userauth').buf());
        setTimeout(() => cb({ type: 'password', username: 'u', password: 'pw' }), 50);
      }) as Any,
    });
    try {
      await within(ready, 2000, 'authentication');
    } finally {
      client.end();
      await ts.close();
    }
  });

  // §1.3 / §3.1
  it('(f) a plain ssh2 server passes a forged public-key signature to the app unverified', async () => {
    const userKey = ssh2.utils.parseKey(generateHostKey().text) as ssh2.ParsedKey;
    const attempts: Array<{ signature?: Buffer; verified?: boolean }> = [];
    const plain = await plainServer((conn) =>
      conn.on('authentication', (ctx: Any) => {
        if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
        if (!ctx.signature) {
          attempts.push({});
          return ctx.accept(); // the query: "would this key do?"
        }
        const verified = ssh2.utils.parseKey(ctx.key.data) as ssh2.ParsedKey;
        attempts.push({ signature: ctx.signature, verified: verified.verify(ctx.blob, ctx.signature, ctx.hashAlgo) });
        ctx.reject();
      }),
    );
    cleanups.push(() => plain.close());
    class ForgingAgent extends ssh2.BaseAgent {
      getIdentities(cb: (err: Error | null, keys?: ssh2.ParsedKey[]) => void): void {
        cb(null, [userKey]);
      }
      sign(_key: unknown, _data: Buffer, ...rest: unknown[]): void {
        const cb = rest[rest.length - 1] as (err: Error | null, sig?: Buffer) => void;
        cb(null, randomBytes(64)); // not a signature by anyone
      }
    }
    const client = new ssh2.Client();
    client.on('error', () => undefined);
    const gone = clientClosed(client);
    client.connect({ host: '127.0.0.1', port: plain.port, username: 'u', agent: new ForgingAgent() as Any });
    await within(gone, 2000, 'auth to end');
    const signed = attempts.filter((a) => a.signature);
    assert.equal(signed.length, 1, 'ssh2 passed the forged signature to the app (it verifies nothing)');
    assert.equal(signed[0]!.signature!.length, 64);
    assert.equal(signed[0]!.verified, false, 'the signature really is forged');
  });

  // §3.3
  it('(g) server-sig-algs in EXT_INFO lacks a comma after ecdsa-sha2-nistp521', () => {
    const source = readFileSync(require.resolve('ssh2/lib/protocol/Protocol.js'), 'utf8');
    assert.match(
      source,
      /'ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521'\s*\+\s*'rsa-sha2-512,/,
      'ssh2 fixed (or rewrote) the server-sig-algs list (§3.3): re-check what glidessh documents about RSA clients',
    );
  });

  // §1.5
  it('(h) Channel.exit() after eof() is a silent no-op on a plain ssh2 server: no exit status arrives', async () => {
    const { client } = await plainPair(
      sessions((s) =>
        s.on('exec', (accept: () => Any) => {
          const ch = accept();
          ch.write('out\n');
          ch.eof();
          ch.exit(3);
          ch.close();
        }),
      ),
    );
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
      client.exec('x', (err, c) => (err ? reject(err) : resolve(c))),
    );
    const r = await within(collect(ch), 2000, 'channel close');
    assert.equal(r.stdout.toString(), 'out\n');
    assert.equal(r.code, null, 'ssh2 now sends exit-status after EOF: sendExitStatus in ssh2-compat.ts may use Channel.exit()');
  });

  it('(h) ... while glidessh sends the exit status after end()', async () => {
    const ts = await startServer({
      handler: async (s) => {
        s.end('out\n');
        await once(s, 'finish');
        await s.exit(3);
      },
    });
    const client = await connect(ts.port);
    try {
      const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
        client.exec('x', (err, c) => (err ? reject(err) : resolve(c))),
      );
      const r = await within(collect(ch), 2000, 'channel close');
      assert.equal(r.stdout.toString(), 'out\n');
      assert.equal(r.code, 3);
    } finally {
      client.end();
      await ts.close();
    }
  });
});

// ------------------------------------------------------------------------------------ forwarding

describe('ssh2 gaps the forwarding helpers work around (openClientChannel, prepareForwardChannel)', () => {
  it('IncomingClient has forwardOut and openssh_forwardOutStreamLocal but no way to open auth-agent@openssh.com', () => {
    const proto = require('ssh2/lib/server.js').IncomingClient.prototype;
    assert.equal(typeof proto.forwardOut, 'function');
    assert.equal(typeof proto.openssh_forwardOutStreamLocal, 'function');
    const agentMethods = Object.getOwnPropertyNames(proto).filter((n) => /agent/i.test(n));
    assert.deepEqual(agentMethods, [], 'ssh2 now can open agent channels: openClientChannel may use it');
    const source = readFileSync(require.resolve('ssh2/lib/server.js'), 'utf8');
    assert.ok(/default:\s*throw new Error\(`Unsupported channel type/.test(source), 'openChannel still refuses other types');
  });

  it('a function in _chanMgr named by `type` + _protocol.openssh_authAgent opens an agent channel the client serves', async () => {
    const agentPath = `${tmpdir()}/glidessh-compat-agent-${process.pid}.sock`;
    const echo = net.createServer((s) => s.pipe(s));
    echo.listen(agentPath);
    await once(echo, 'listening');
    let opened!: (v: { type: string; echoed: string }) => void;
    const result = new Promise<{ type: string; echoed: string }>((r) => (opened = r));
    const { client, done } = await plainPair(
      sessions((s) => {
        s.on('auth-agent', (accept: () => void) => accept());
        s.on('exec', (accept: () => Any) => {
          const sessionCh = accept();
          const conn = sessionCh._client;
          const cb = (err: Error | undefined, ch: Any): void => {
            if (err) throw err;
            ch.once('data', (d: Buffer) => {
              opened({ type: ch.type, echoed: d.toString() });
              ch.end();
              sessionCh.exit(0);
              sessionCh.end();
            });
            ch.write('ping');
          };
          (cb as Any).type = 'auth-agent@openssh.com';
          const id = conn._chanMgr.add(cb);
          conn._protocol.openssh_authAgent(id, channelModule.MAX_WINDOW, channelModule.PACKET_SIZE);
        });
      }),
      {},
      { agent: agentPath, agentForward: true },
    );
    try {
      client.exec('x', () => undefined);
      assert.deepEqual(await within(result, 3000, 'the agent channel'), { type: 'auth-agent@openssh.com', echoed: 'ping' });
    } finally {
      await done();
      echo.close();
    }
  });

  it('(i) a plain ssh2 server channel sends CLOSE right after EOF, so the client cannot send after the server ended', async () => {
    let received = 0;
    const { client, done } = await plainPair(
      (conn) =>
        conn.on('tcpip', (accept: () => Any) => {
          const ch = accept();
          ch.on('data', (d: Buffer) => (received += d.length));
          ch.end('bye');
        }),
      {},
      { strictVendor: false },
    );
    try {
      const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
        client.forwardOut('127.0.0.1', 1, '127.0.0.1', 2, (err, c) => (err ? reject(err) : resolve(c))),
      );
      ch.on('error', () => undefined);
      ch.resume();
      await within(once(ch, 'close'), 2000, 'the close that follows EOF');
      ch.write('late data');
      await delay(100);
      assert.equal(received, 0, 'ssh2 now half-closes: prepareForwardChannel may keep ssh2 onFinish');
    } finally {
      await done();
    }
  });

  it('after the transport closed, _protocol._destruct is no longer a function (connectionUsable)', async () => {
    let conn: Any;
    const { client, done } = await plainPair((c) => (conn = c));
    try {
      await waitFor(() => conn?.authenticated === true, 3000, 'auth');
      assert.equal(typeof conn._protocol._destruct, 'function');
      const closed = once(conn._sock, 'close');
      client.end();
      await within(closed, 3000, 'transport close');
      await delay(10);
      assert.equal(conn._protocol._destruct, undefined);
    } finally {
      await done();
    }
  });
});
