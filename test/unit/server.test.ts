/**
 * Server lifecycle and options: listen/serve/handleConnection, close/shutdown, host keys,
 * timeouts, connCallback. Ports gliderlabs/ssh's server_test.go (TestAddHostKey,
 * TestServerShutdown, TestServerClose, TestServerHandshakeTimeout, TestConnWrapping).
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import {
  GlidesshError,
  InvalidOptionError,
  KeyParseError,
  listenAndServe,
  serve,
  Server,
  TimeoutError,
  type Context,
  type ServerOptions,
  type Session,
} from '../../src/index.js';
import { connect, delay, exec, startServer, waitFor, within } from '../helpers/harness.js';

// ------------------------------------------------------------------------------------ helpers

/** A raw TCP client that speaks no SSH, with a promise for the server closing it. */
async function rawSocket(port: number): Promise<{ sock: net.Socket; closed: Promise<void>; received: () => string }> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => undefined);
  let text = '';
  sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const closed = once(sock, 'close').then(() => undefined);
  await once(sock, 'connect');
  return { sock, closed, received: () => text };
}


/** Resolves once the client's connection has closed. */
function clientClosed(client: ssh2.Client): Promise<void> {
  return new Promise((resolve) => client.once('close', () => resolve()));
}

/** Sleeps `ms`, or less if `signal` aborts (so no test leaves a handler running). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Starts an exec and resolves with the client channel. */
function startExec(client: ssh2.Client, command: string): Promise<ssh2.ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))));
}

/** Collects a channel's stdout and exit code. */
function drain(ch: ssh2.ClientChannel): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve) => {
    let out = '';
    let code: number | null = null;
    ch.on('data', (d: Buffer) => (out += d.toString()));
    ch.stderr.resume();
    ch.on('exit', (c: number | null) => (code = c));
    ch.on("close", (c?: number | null) => resolve({ out, code: code ?? (typeof c === "number" ? c : null) }));
  });
}

const hello = (s: Session): void => {
  s.write(`hello ${s.user}\n`);
};

/** Runs one exec over a fresh ssh2 client and closes it. */
async function execOnce(port: number, command = 'x'): Promise<string> {
  const client = await connect(port);
  try {
    const r = await exec(client, command);
    assert.equal(r.code, 0);
    return r.stdout.toString();
  } finally {
    client.end();
  }
}

// ------------------------------------------------------------------------------------ keys

interface KeyFiles {
  dir: string;
  /** private key text by name */
  priv: Record<string, string>;
  /** public key wire blob by name */
  pub: Record<string, Buffer>;
}

const keyFiles: KeyFiles = { dir: '', priv: {}, pub: {} };

before(() => {
  keyFiles.dir = mkdtempSync(join(tmpdir(), 'glidessh-server-test-'));
  const gen = (name: string, args: string[]): void => {
    const path = join(keyFiles.dir, name);
    execFileSync('ssh-keygen', ['-q', '-N', '', '-C', name, '-f', path, ...args]);
    keyFiles.priv[name] = readFileSync(path, 'utf8');
    keyFiles.pub[name] = Buffer.from(readFileSync(`${path}.pub`, 'utf8').split(' ')[1]!, 'base64');
  };
  gen('ed25519', ['-t', 'ed25519']);
  gen('ecdsa', ['-t', 'ecdsa', '-b', '256']);
  gen('ecdsa-pem', ['-t', 'ecdsa', '-b', '384', '-m', 'PEM']);
  gen('rsa', ['-t', 'rsa', '-b', '2048']);
  gen('rsa-pem', ['-t', 'rsa', '-b', '2048', '-m', 'PEM']);
  gen('rsa2', ['-t', 'rsa', '-b', '2048']);
  // ssh-keygen writes Ed25519 in OpenSSH format even with -m PEM; node:crypto writes PKCS#8 PEM.
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  keyFiles.priv['ed25519-pem'] = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const str = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  keyFiles.pub['ed25519-pem'] = Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
});

after(() => {
  if (keyFiles.dir) rmSync(keyFiles.dir, { recursive: true, force: true });
});

/** Connects with only `hostKeyAlgo` offered and returns the host key blob the client saw. */
async function seenHostKey(port: number, hostKeyAlgo: string): Promise<Buffer> {
  let seen: Buffer | undefined;
  const client = await connect(port, {
    algorithms: { serverHostKey: [hostKeyAlgo] as ssh2.ServerHostKeyAlgorithm[] },
    hostVerifier: (key: Buffer) => {
      seen = Buffer.from(key);
      return true;
    },
  });
  client.end();
  assert.ok(seen, 'hostVerifier was called');
  return seen;
}

// ------------------------------------------------------------------------------------ tests

describe('listen, address and events', () => {
  it('listen() resolves the bound AddressInfo with a real port; address() returns it', async () => {
    const server = new Server();
    assert.equal(server.address(), null);
    let listening = 0;
    server.on('listening', () => listening++);
    const info = await server.listen(0, '127.0.0.1');
    try {
      assert.equal(info.address, '127.0.0.1');
      assert.equal(info.family, 'IPv4');
      assert.ok(Number.isInteger(info.port) && info.port > 0 && info.port < 65536);
      assert.deepEqual(server.address(), info);
      assert.equal(listening, 1);
      await assert.rejects(execOnce(info.port), 'no handler: exec is refused');
    } finally {
      await server.close();
    }
    assert.equal(server.address(), null);
  });

  it("emits 'connection' with the connection's Context and 'close' once closed", async () => {
    const ts = await startServer({ handler: hello });
    const seen: Context[] = [];
    ts.server.on('connection', (ctx) => seen.push(ctx));
    let closes = 0;
    ts.server.on('close', () => closes++);
    const client = await connect(ts.port);
    assert.equal(seen.length, 1);
    const ctx = seen[0]!;
    assert.equal(ctx.server, ts.server);
    assert.equal(ctx.remoteAddress, '127.0.0.1');
    assert.equal(ctx.localPort, ts.port);
    assert.match(ctx.clientVersion, /^SSH-2\.0-/);
    assert.equal(ctx.serverVersion, 'SSH-2.0-glidessh');
    assert.equal(ctx.user, 'testuser');
    assert.match(ctx.sessionId, /^[0-9a-f]{64}$/);
    assert.equal(ctx.signal.aborted, false);
    const gone = clientClosed(client);
    await ts.close();
    await within(gone, 1000, 'client close');
    assert.equal(ctx.signal.aborted, true);
    assert.equal(closes, 1);
    await ts.close();
    assert.equal(closes, 1, "'close' is emitted once");
  });

  it("a 'connection' listener that throws is reported on 'error' and the connection goes on", async () => {
    const ts = await startServer({ handler: hello });
    ts.server.once('connection', () => {
      throw new Error('listener boom');
    });
    assert.equal(await execOnce(ts.port), 'hello testuser\n');
    const reported = ts.errors.find((e) => (e as GlidesshError).code === 'ERR_HOOK');
    assert.ok(reported, 'the throw is reported');
    assert.match(reported.message, /listener boom/);
    assert.ok((reported as Error & { context?: unknown }).context, 'with the connection context');
    await ts.close();
  });
});

describe('close and shutdown', () => {
  it('listen() after close() or shutdown() rejects with ERR_SERVER_CLOSED; serve() throws it', async () => {
    for (const stop of ['close', 'shutdown'] as const) {
      const server = new Server();
      await server.listen(0, '127.0.0.1');
      await server[stop]();
      await assert.rejects(server.listen(0, '127.0.0.1'), (err: GlidesshError) => {
        assert.ok(err instanceof GlidesshError);
        assert.equal(err.code, 'ERR_SERVER_CLOSED');
        return true;
      });
      await assert.rejects(server.listenAndServe(), { code: 'ERR_SERVER_CLOSED' });
      const l = net.createServer();
      assert.throws(() => server.serve(l), { code: 'ERR_SERVER_CLOSED' });
    }
    // Also on a server that never listened.
    const fresh = new Server();
    await fresh.close();
    await assert.rejects(fresh.listen(0, '127.0.0.1'), { code: 'ERR_SERVER_CLOSED' });
  });

  it('listen() still binding when close() is called rejects with ERR_SERVER_CLOSED and leaves no listener', async () => {
    for (const stop of ['close', 'shutdown'] as const) {
      // Catch the net.Server that listen() creates.
      const made: net.Server[] = [];
      const realListen = net.Server.prototype.listen;
      net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
        made.push(this);
        return (realListen as (...a: unknown[]) => net.Server).apply(this, args);
      } as typeof realListen;
      const server = new Server();
      let listening: Promise<unknown>;
      try {
        listening = server.listen(0, '127.0.0.1');
      } finally {
        net.Server.prototype.listen = realListen;
      }
      const stopped = server[stop]();
      await assert.rejects(listening, { code: 'ERR_SERVER_CLOSED' });
      await within(stopped, 1000, stop);
      assert.equal(server.address(), null);
      assert.equal(made.length, 1);
      assert.equal(made[0]!.listening, false, 'no listening socket left behind');
    }
  });

  it('listen() on a port in use rejects with EADDRINUSE; the server can listen elsewhere', async () => {
    const busy = net.createServer();
    busy.listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const server = new Server({ handler: hello });
    try {
      await assert.rejects(server.listen((busy.address() as net.AddressInfo).port, '127.0.0.1'), { code: 'EADDRINUSE' });
      assert.equal(server.address(), null);
      const { port } = await server.listen(0, '127.0.0.1');
      assert.equal(await execOnce(port), 'hello testuser\n');
    } finally {
      busy.close();
      await server.close();
    }
  });

  it('close() and shutdown() are idempotent, in any order', async () => {
    const server = new Server();
    await server.listen(0, '127.0.0.1');
    let closes = 0;
    server.on('close', () => closes++);
    await Promise.all([server.close(), server.close(), server.shutdown()]);
    await server.shutdown();
    await server.close();
    assert.equal(closes, 1);

    const other = new Server();
    await other.listen(0, '127.0.0.1');
    await other.shutdown();
    await other.shutdown();
    await other.close();
  });

  it('close() stops the listener: new TCP connections are refused', async () => {
    const ts = await startServer({ handler: hello });
    await ts.close();
    const sock = net.connect(ts.port, '127.0.0.1');
    const [err] = (await once(sock, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'ECONNREFUSED');
  });

  // gliderlabs TestServerClose
  it('close() resolves quickly and ends a connection whose handler is still running', async () => {
    let started!: () => void;
    const handlerStarted = new Promise<void>((r) => (started = r));
    let sessionAborted = false;
    const ts = await startServer({
      handler: async (s) => {
        started();
        await sleep(5000, s.signal);
        sessionAborted = s.signal.aborted;
      },
    });
    const client = await connect(ts.port);
    const gone = clientClosed(client);
    const ch = await startExec(client, 'sleep');
    ch.on('data', () => undefined);
    await handlerStarted;
    const t0 = performance.now();
    await ts.close();
    assert.ok(performance.now() - t0 < 1000, `close() took ${performance.now() - t0} ms`);
    await within(gone, 1000, "the client's connection ending");
    await waitFor(() => sessionAborted, 1000, 'session.signal to abort');
  });

  // gliderlabs TestServerShutdown
  it('shutdown() lets a running session finish, then resolves once its connection ended', async () => {
    let started!: () => void;
    const handlerStarted = new Promise<void>((r) => (started = r));
    let connClosedAt = 0;
    const ts = await startServer({
      handler: async (s) => {
        s.write('Hello world\n');
        started();
        await delay(50);
      },
      connectionCloseCallback: () => (connClosedAt = performance.now()),
    });
    const client = await connect(ts.port);
    const result = drain(await startExec(client, 'hello'));
    await handlerStarted;
    let shutdownAt = 0;
    const t0 = performance.now();
    const shutdown = ts.server.shutdown().then(() => (shutdownAt = performance.now()));
    // New connections are refused at once.
    await delay(5);
    const refused = net.connect(ts.port, '127.0.0.1');
    assert.equal(((await once(refused, 'error')) as [NodeJS.ErrnoException])[0].code, 'ECONNREFUSED');

    const r = await result;
    assert.deepEqual(r, { out: 'Hello world\n', code: 0 });
    await delay(20);
    assert.equal(shutdownAt, 0, 'shutdown() waits while the connection is open');
    client.end();
    await within(shutdown, 2000, 'shutdown');
    assert.ok(connClosedAt > 0 && shutdownAt >= connClosedAt, 'shutdown resolved after the connection ended');
    assert.ok(shutdownAt - t0 < 2000);
  });

  it('close() during a pending shutdown() ends the connections, and both resolve', async () => {
    const ts = await startServer({ handler: hello });
    const client = await connect(ts.port);
    const gone = clientClosed(client);
    const shutdown = ts.server.shutdown();
    await delay(20);
    await within(ts.server.close(), 1000, 'close');
    await within(shutdown, 1000, 'shutdown');
    await within(gone, 1000, 'client close');
  });

  it('close() ends connections that are still in the handshake', async () => {
    const ts = await startServer({ handler: hello }); // default handshakeTimeout: 2 minutes
    const a = await rawSocket(ts.port);
    const b = await rawSocket(ts.port);
    b.sock.write('SSH-2.0-OnlyTheIdent\r\n');
    await waitFor(() => a.received().startsWith('SSH-2.0-glidessh') && b.received().length > 0, 1000, 'server ident');
    await delay(20);
    const t0 = performance.now();
    await within(ts.close(), 1000, 'close');
    await within(Promise.all([a.closed, b.closed]), 1000, 'raw sockets closed');
    assert.ok(performance.now() - t0 < 1000);
  });

  it('shutdown({ signal }) rejects with signal.reason when it aborts while a session runs', async () => {
    let started!: () => void;
    const handlerStarted = new Promise<void>((r) => (started = r));
    const ts = await startServer({
      handler: async (s) => {
        started();
        await sleep(5000, s.signal);
      },
    });
    const client = await connect(ts.port);
    const gone = clientClosed(client);
    (await startExec(client, 'wait')).on('data', () => undefined);
    await handlerStarted;
    const ac = new AbortController();
    const reason = new Error('give up waiting');
    setTimeout(() => ac.abort(reason), 50);
    const t0 = performance.now();
    await assert.rejects(ts.server.shutdown({ signal: ac.signal }), (err) => err === reason);
    assert.ok(performance.now() - t0 < 1000);
    // The connection was left running; close() ends it.
    await delay(20);
    assert.equal((client as unknown as { _sock: net.Socket })._sock.destroyed, false);
    await within(ts.close(), 1000, 'close');
    await within(gone, 1000, 'client close');
  });

  it('shutdown({ signal }) with an already aborted signal rejects with its reason', async () => {
    const ts = await startServer({ handler: hello });
    const reason = new Error('already');
    await assert.rejects(ts.server.shutdown({ signal: AbortSignal.abort(reason) }), (err) => err === reason);
    await ts.close();
  });

  it('server[Symbol.asyncDispose]() closes (await using)', async () => {
    let port = 0;
    let closed = false;
    {
      await using server = new Server({ handler: hello });
      server.on('close', () => (closed = true));
      ({ port } = await server.listen(0, '127.0.0.1'));
      assert.equal(await execOnce(port), 'hello testuser\n');
    }
    assert.equal(closed, true);
    const s2 = new Server();
    await s2.listen(0, '127.0.0.1');
    await s2[Symbol.asyncDispose]();
    await assert.rejects(s2.listen(0), { code: 'ERR_SERVER_CLOSED' });
  });
});

describe('serving sockets and listeners the caller made', () => {
  it('handleConnection(socket) serves a socket accepted by the caller', async () => {
    const server = new Server({ handler: hello });
    const own = net.createServer((sock) => server.handleConnection(sock));
    own.listen(0, '127.0.0.1');
    await once(own, 'listening');
    const { port } = own.address() as net.AddressInfo;
    try {
      assert.equal(await execOnce(port), 'hello testuser\n');
      // close() also ends connections it got through handleConnection.
      const client = await connect(port);
      const gone = clientClosed(client);
      await within(server.close(), 1000, 'close');
      await within(gone, 1000, 'client close');
      assert.equal(own.listening, true, 'a listener never given to the server stays open');
    } finally {
      own.close();
    }
  });

  it('handleConnection() after close() destroys the socket', async () => {
    const server = new Server({ handler: hello });
    await server.close();
    const own = net.createServer((sock) => server.handleConnection(sock));
    own.listen(0, '127.0.0.1');
    await once(own, 'listening');
    try {
      const raw = await rawSocket((own.address() as net.AddressInfo).port);
      await within(raw.closed, 1000, 'socket destroyed');
      assert.equal(raw.received(), '');
    } finally {
      own.close();
    }
  });

  it('server.serve(listener) serves a listener the caller made; close() closes it', async () => {
    const server = new Server({ handler: hello });
    const own = net.createServer();
    own.listen(0, '127.0.0.1');
    await once(own, 'listening');
    server.serve(own);
    const { port } = own.address() as net.AddressInfo;
    assert.deepEqual(server.address(), own.address());
    assert.equal(await execOnce(port), 'hello testuser\n');
    await server.close();
    assert.equal(own.listening, false);
  });

  it('serve(listener, handler, options) creates a server for the listener', async () => {
    const own = net.createServer();
    own.listen(0, '127.0.0.1');
    await once(own, 'listening');
    const server = serve(own, hello, { version: 'ServeTest_1' });
    assert.ok(server instanceof Server);
    const { port } = own.address() as net.AddressInfo;
    const raw = await rawSocket(port);
    await waitFor(() => raw.received().includes('\n'), 1000, 'server ident');
    assert.equal(raw.received(), 'SSH-2.0-ServeTest_1\r\n');
    raw.sock.destroy();
    assert.equal(await execOnce(port), 'hello testuser\n');
    await server.close();
    assert.equal(own.listening, false);
  });

  it("listenAndServe('127.0.0.1:0', handler) listens and serves", async () => {
    const server = await listenAndServe('127.0.0.1:0', hello, { version: 'LAS_1' });
    try {
      const addr = server.address();
      assert.ok(addr && addr.port > 0);
      assert.equal(addr.address, '127.0.0.1');
      assert.equal(await execOnce(addr.port), 'hello testuser\n');
    } finally {
      await server.close();
    }
  });

  it('listenAndServe() rejects a bad address with InvalidOptionError("addr")', async () => {
    await assert.rejects(listenAndServe('nope', hello), (err: InvalidOptionError) => {
      assert.ok(err instanceof InvalidOptionError);
      assert.equal(err.option, 'addr');
      return true;
    });
  });

  it('server.listenAndServe() listens on options.addr', async () => {
    const server = new Server({ addr: '127.0.0.1:0', handler: hello });
    const info = await server.listenAndServe();
    try {
      assert.equal(info.address, '127.0.0.1');
      assert.equal(await execOnce(info.port), 'hello testuser\n');
    } finally {
      await server.close();
    }
  });
});

describe('option validation', () => {
  const garbageKey = '-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n';
  const cases: Array<[string, unknown, string]> = [
    ['an unknown key', { hostkeys: [] }, 'hostkeys'],
    ['maxAuthTries 0', { maxAuthTries: 0 }, 'maxAuthTries'],
    ['maxAuthTries 1.5', { maxAuthTries: 1.5 }, 'maxAuthTries'],
    ['handshakeTimeout -1', { handshakeTimeout: -1 }, 'handshakeTimeout'],
    ['handshakeTimeout 1.5', { handshakeTimeout: 1.5 }, 'handshakeTimeout'],
    ['handshakeTimeout 2**31', { handshakeTimeout: 2 ** 31 }, 'handshakeTimeout'],
    ['idleTimeout as a string', { idleTimeout: '5' }, 'idleTimeout'],
    ['maxTimeout NaN', { maxTimeout: NaN }, 'maxTimeout'],
    ['addr without a port', { addr: 'localhost' }, 'addr'],
    ['addr with port 99999', { addr: '127.0.0.1:99999' }, 'addr'],
    ['addr not a string', { addr: 22 }, 'addr'],
    ['version with a space', { version: 'my server' }, 'version'],
    ['version with a dash', { version: 'my-server' }, 'version'],
    ['version empty', { version: '' }, 'version'],
    ['hostKeys not an array', { hostKeys: 'key' }, 'hostKeys'],
    ['hostKeys with a number', { hostKeys: [42] }, 'hostKeys'],
    ['a garbage host key', { hostKeys: ['not a key at all'] }, 'hostKeys'],
    ['a garbage OpenSSH-looking host key', { hostKeys: [garbageKey] }, 'hostKeys'],
    ['channelHandlers entry not a function', { channelHandlers: { session: 'yes' } }, 'channelHandlers'],
    ['requestHandlers an array', { requestHandlers: [] }, 'requestHandlers'],
    ['subsystemHandlers null', { subsystemHandlers: null }, 'subsystemHandlers'],
    ['passwordHandler not a function', { passwordHandler: true }, 'passwordHandler'],
    ['handler not a function', { handler: 'hello' }, 'handler'],
    ['banner not a string', { banner: 42 }, 'banner'],
  ];
  for (const [what, options, option] of cases) {
    it(`throws InvalidOptionError naming "${option}" for ${what}`, () => {
      assert.throws(
        () => new Server(options as ServerOptions),
        (err: unknown) => {
          assert.ok(err instanceof InvalidOptionError, String(err));
          assert.ok(err instanceof GlidesshError);
          assert.equal(err.code, 'ERR_INVALID_OPTION');
          assert.equal(err.option, option);
          assert.ok(err.message.includes(option), err.message);
          return true;
        },
      );
    });
  }

  it('a garbage host key keeps the KeyParseError as cause', () => {
    assert.throws(() => new Server({ hostKeys: ['not a key'] }), (err: InvalidOptionError) => {
      assert.ok(err.cause instanceof KeyParseError);
      return true;
    });
  });

  it('options that are not an object are refused', () => {
    for (const bad of [null, 42, 'x', []]) {
      assert.throws(() => new Server(bad as ServerOptions), { code: 'ERR_INVALID_OPTION', option: 'options' });
    }
  });

  it('handle() and use() refuse non-functions; addHostKey() refuses garbage with ERR_KEY_PARSE', () => {
    const server = new Server();
    assert.throws(() => server.handle('x' as never), { code: 'ERR_INVALID_OPTION', option: 'handler' });
    assert.throws(() => server.use(hello as never, 'x' as never), { code: 'ERR_INVALID_OPTION', option: 'middleware' });
    assert.throws(() => server.addHostKey('garbage'), { code: 'ERR_KEY_PARSE' });
    assert.deepEqual(server.hostKeyTypes, ['ssh-ed25519']);
  });

  it('valid edge values are accepted', () => {
    new Server({ handshakeTimeout: 0, idleTimeout: 2 ** 31 - 1, maxTimeout: 1, maxAuthTries: 1 });
    new Server({ addr: ':22' });
    new Server({ addr: '[::1]:2222' });
    new Server({ version: 'Glide_1.0' });
    new Server({ channelHandlers: {}, requestHandlers: {}, subsystemHandlers: {} });
    new Server({ hostKeys: [] });
    new Server(undefined);
  });
});

describe('host keys', () => {
  it('with no hostKeys, one Ed25519 key is generated (a new one per server)', async () => {
    const a = await startServer({ handler: hello });
    const b = await startServer({ handler: hello });
    try {
      assert.deepEqual(a.server.hostKeyTypes, ['ssh-ed25519']);
      const ka = await seenHostKey(a.port, 'ssh-ed25519');
      const kb = await seenHostKey(b.port, 'ssh-ed25519');
      assert.equal(ka.subarray(4, 15).toString(), 'ssh-ed25519');
      assert.notDeepEqual(ka, kb);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  const formats: Array<[string, string, string]> = [
    ['ed25519', 'ssh-ed25519', 'OpenSSH Ed25519'],
    ['ed25519-pem', 'ssh-ed25519', 'PKCS#8 PEM Ed25519'],
    ['ecdsa', 'ecdsa-sha2-nistp256', 'OpenSSH ECDSA P-256'],
    ['ecdsa-pem', 'ecdsa-sha2-nistp384', 'PEM (SEC1) ECDSA P-384'],
    ['rsa', 'rsa-sha2-256', 'OpenSSH RSA'],
    ['rsa-pem', 'rsa-sha2-512', 'PEM (PKCS#1) RSA'],
  ];
  for (const [name, algo, what] of formats) {
    it(`loads an ${what} host key and presents it in the handshake`, async () => {
      const key = keyFiles.priv[name]!;
      const ts = await startServer({ hostKeys: [Buffer.from(key)], handler: hello });
      try {
        assert.deepEqual(ts.server.hostKeyTypes, [algo.startsWith('rsa-') ? 'ssh-rsa' : algo]);
        assert.deepEqual(await seenHostKey(ts.port, algo), keyFiles.pub[name]);
      } finally {
        await ts.close();
      }
    });
  }

  it('several key types at once: each is presented for its algorithm; one key per type', async () => {
    const ts = await startServer({
      hostKeys: [keyFiles.priv['ed25519']!, keyFiles.priv['ecdsa']!, keyFiles.priv['rsa']!, keyFiles.priv['rsa2']!],
      handler: hello,
    });
    try {
      assert.deepEqual([...ts.server.hostKeyTypes].sort(), ['ecdsa-sha2-nistp256', 'ssh-ed25519', 'ssh-rsa']);
      assert.deepEqual(await seenHostKey(ts.port, 'ssh-ed25519'), keyFiles.pub['ed25519']);
      assert.deepEqual(await seenHostKey(ts.port, 'ecdsa-sha2-nistp256'), keyFiles.pub['ecdsa']);
      // Within hostKeys, the last key of a type wins (as addHostKey replaces).
      assert.deepEqual(await seenHostKey(ts.port, 'rsa-sha2-512'), keyFiles.pub['rsa2']);
    } finally {
      await ts.close();
    }
  });

  // gliderlabs TestAddHostKey
  it('addHostKey() replaces a key of the same type: the handshake presents the last added', async () => {
    const server = new Server({ handler: hello });
    server.addHostKey(keyFiles.priv['rsa']!);
    server.addHostKey(keyFiles.priv['rsa2']!);
    assert.equal(server.hostKeyTypes.filter((t) => t === 'ssh-rsa').length, 1);
    assert.deepEqual([...server.hostKeyTypes].sort(), ['ssh-ed25519', 'ssh-rsa']);
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const seen = await seenHostKey(port, 'rsa-sha2-256');
      assert.deepEqual(seen, keyFiles.pub['rsa2']);
      assert.notDeepEqual(seen, keyFiles.pub['rsa']);
      // Adding a key while listening applies to the next connection.
      server.addHostKey(keyFiles.priv['rsa']!);
      assert.deepEqual(await seenHostKey(port, 'rsa-sha2-256'), keyFiles.pub['rsa']);
    } finally {
      await server.close();
    }
  });
});

describe('handshake, idle and max timeouts', () => {
  // gliderlabs TestServerHandshakeTimeout
  it('handshakeTimeout closes a socket that sends nothing', async () => {
    const failures: Error[] = [];
    const ts = await startServer({ handshakeTimeout: 50, connectionFailedCallback: (_s, err) => failures.push(err) });
    try {
      const raw = await rawSocket(ts.port);
      const t0 = performance.now();
      await within(raw.closed, 1000, 'server closing the socket');
      assert.ok(performance.now() - t0 >= 30, 'not closed before the timeout');
      await waitFor(() => failures.length === 1, 1000, 'connectionFailedCallback');
      assert.ok(failures[0] instanceof TimeoutError);
      assert.equal((failures[0] as TimeoutError).kind, 'handshake');
    } finally {
      await ts.close();
    }
  });

  it('handshakeTimeout closes a socket that sends only its version line', async () => {
    const ts = await startServer({ handshakeTimeout: 50 });
    try {
      const raw = await rawSocket(ts.port);
      raw.sock.write('SSH-2.0-Slowpoke_1.0\r\n');
      await within(raw.closed, 1000, 'server closing the socket');
      assert.match(raw.received(), /^SSH-2\.0-glidessh\r\n/);
    } finally {
      await ts.close();
    }
  });

  it('handshakeTimeout stops counting once the client is authenticated', async () => {
    const ts = await startServer({ handshakeTimeout: 150, handler: hello });
    const client = await connect(ts.port);
    try {
      await delay(300);
      const r = await exec(client, 'x');
      assert.equal(r.stdout.toString(), 'hello testuser\n');
    } finally {
      client.end();
      await ts.close();
    }
  });

  it('idleTimeout closes an idle connection and aborts ctx.signal with ERR_TIMEOUT (idle)', async () => {
    const ts = await startServer({ idleTimeout: 150, handler: hello });
    let ctx: Context | undefined;
    ts.server.on('connection', (c) => (ctx = c));
    const client = await connect(ts.port);
    const gone = clientClosed(client);
    const t0 = performance.now();
    try {
      await within(gone, 1500, 'idle connection closed');
      assert.ok(performance.now() - t0 >= 100);
      assert.ok(ctx?.signal.aborted);
      const reason = ctx.signal.reason as TimeoutError;
      assert.ok(reason instanceof TimeoutError);
      assert.equal(reason.code, 'ERR_TIMEOUT');
      assert.equal(reason.kind, 'idle');
    } finally {
      await ts.close();
    }
  });

  it('idleTimeout: activity keeps the connection open', async () => {
    const ts = await startServer({ idleTimeout: 250, handler: hello });
    let ctx: Context | undefined;
    ts.server.on('connection', (c) => (ctx = c));
    const client = await connect(ts.port);
    let closed = false;
    const gone = clientClosed(client).then(() => (closed = true));
    try {
      const end = performance.now() + 800;
      while (performance.now() < end) {
        assert.equal((await exec(client, 'x')).stdout.toString(), 'hello testuser\n');
        await delay(60);
      }
      assert.equal(closed, false, 'busy connection stayed open past 3 idle periods');
      assert.equal(ctx?.signal.aborted, false);
      await within(gone, 1500, 'closed once idle');
      assert.equal((ctx.signal.reason as TimeoutError).kind, 'idle');
    } finally {
      await ts.close();
    }
  });

  it('idleTimeout with an async connCallback and serverConfigCallback still completes the handshake', async () => {
    const ts = await startServer({
      idleTimeout: 2000,
      connCallback: async () => {
        await delay(30);
        return undefined;
      },
      serverConfigCallback: async () => {
        await delay(30);
        return {};
      },
      handler: hello,
    });
    try {
      assert.equal(await within(execOnce(ts.port), 1500, 'exec'), 'hello testuser\n');
    } finally {
      await ts.close();
    }
  });

  it('maxTimeout closes even a busy connection, with ERR_TIMEOUT (max)', async () => {
    const ts = await startServer({ maxTimeout: 300, idleTimeout: 5000, handler: hello });
    let ctx: Context | undefined;
    ts.server.on('connection', (c) => (ctx = c));
    const client = await connect(ts.port);
    let closed = false;
    const gone = clientClosed(client).then(() => (closed = true));
    const t0 = performance.now();
    try {
      while (!closed && performance.now() - t0 < 2000) {
        await exec(client, 'x').catch(() => undefined);
        await delay(20);
      }
      await within(gone, 100, 'closed');
      const took = performance.now() - t0;
      assert.ok(took < 1000, `closed after ${took} ms`);
      const reason = ctx?.signal.reason as TimeoutError;
      assert.ok(reason instanceof TimeoutError);
      assert.equal(reason.kind, 'max');
    } finally {
      await ts.close();
    }
  });
});

describe('connCallback', () => {
  /** Wraps a socket and counts the bytes the server writes through it. */
  class CountingStream extends Duplex {
    written = 0;
    constructor(private readonly inner: net.Socket) {
      super();
      inner.on('data', (d: Buffer) => {
        if (!this.push(d)) inner.pause();
      });
      inner.on('end', () => this.push(null));
      inner.on('close', () => this.destroy());
      inner.on('error', (err) => this.destroy(err));
    }
    override _read(): void {
      this.inner.resume();
    }
    override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
      this.written += chunk.length;
      this.inner.write(chunk, cb);
    }
    override _final(cb: (err?: Error | null) => void): void {
      this.inner.end(cb);
    }
    override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
      this.inner.destroy();
      cb(err);
    }
  }

  // gliderlabs TestConnWrapping
  it('a wrapping Duplex returned by connCallback carries the connection', async () => {
    const wrappers: CountingStream[] = [];
    let seenCtx: Context | undefined;
    const ts = await startServer({
      handler: hello,
      connCallback: (ctx, socket) => {
        seenCtx = ctx;
        const w = new CountingStream(socket as net.Socket);
        wrappers.push(w);
        return w;
      },
    });
    try {
      assert.equal(await execOnce(ts.port), 'hello testuser\n');
      assert.equal(wrappers.length, 1);
      assert.ok(wrappers[0]!.written > 0, 'bytes went through the wrapper');
      assert.equal(seenCtx?.remoteAddress, '127.0.0.1');
    } finally {
      await ts.close();
    }
  });

  it('connCallback returning null drops the connection; connectionFailedCallback is told', async () => {
    const failures: Array<{ socket: unknown; err: Error }> = [];
    const ts = await startServer({
      handler: hello,
      connCallback: () => null,
      connectionFailedCallback: (socket, err) => failures.push({ socket, err }),
    });
    try {
      await assert.rejects(connect(ts.port, { readyTimeout: 2000 }));
      await waitFor(() => failures.length === 1, 1000, 'connectionFailedCallback');
      assert.ok(failures[0]!.socket instanceof net.Socket);
      assert.ok(failures[0]!.err instanceof GlidesshError);
      assert.equal((failures[0]!.err as GlidesshError).code, 'ERR_CONNECTION_DROPPED');
    } finally {
      await ts.close();
    }
  });

  it('connCallback returning undefined uses the socket as is; a throwing one drops it and reports', async () => {
    let throwIt = false;
    const ts = await startServer({
      handler: hello,
      connCallback: () => {
        if (throwIt) throw new Error('cc boom');
        return undefined;
      },
    });
    try {
      assert.equal(await execOnce(ts.port), 'hello testuser\n');
      throwIt = true;
      await assert.rejects(connect(ts.port, { readyTimeout: 2000 }));
      await waitFor(() => ts.errors.length > 0, 1000, "'error' event");
      assert.equal((ts.errors[0] as GlidesshError).code, 'ERR_HOOK');
    } finally {
      await ts.close();
    }
  });
});

describe('hooks that throw', () => {
  it('a throwing serverConfigCallback drops the connection and reports ERR_HOOK naming it', async () => {
    const ts = await startServer({
      handler: hello,
      serverConfigCallback: () => {
        throw new Error('scc boom');
      },
    });
    try {
      await assert.rejects(connect(ts.port, { readyTimeout: 2000 }));
      await waitFor(() => ts.errors.length > 0, 1000, "'error' event");
      const err = ts.errors[0] as GlidesshError & { hook?: string; context?: Context };
      assert.equal(err.code, 'ERR_HOOK');
      assert.equal(err.hook, 'serverConfigCallback');
      assert.equal((err.cause as Error).message, 'scc boom');
      assert.ok(err.context, 'err.context is set');
    } finally {
      await ts.close();
    }
  });

  it('throwing connectionFailedCallback / connectionCloseCallback are reported as ERR_HOOK', async () => {
    let dropNext = false;
    const ts = await startServer({
      handler: hello,
      connCallback: () => (dropNext ? null : undefined),
      connectionFailedCallback: () => {
        throw new Error('failed boom');
      },
      connectionCloseCallback: () => {
        throw new Error('close boom');
      },
    });
    try {
      assert.equal(await execOnce(ts.port), 'hello testuser\n');
      await waitFor(() => ts.errors.length === 1, 1000, "'error' for connectionCloseCallback");
      dropNext = true;
      await assert.rejects(connect(ts.port, { readyTimeout: 2000 }));
      await waitFor(() => ts.errors.length === 2, 1000, "'error' for connectionFailedCallback");
      const [closeErr, failedErr] = ts.errors as Array<GlidesshError & { hook?: string }>;
      assert.equal(closeErr!.code, 'ERR_HOOK');
      assert.equal(closeErr!.hook, 'connectionCloseCallback');
      assert.equal(failedErr!.code, 'ERR_HOOK');
      assert.equal(failedErr!.hook, 'connectionFailedCallback');
    } finally {
      await ts.close();
    }
  });
});

describe('TCP_NODELAY', () => {
  it('is set on accepted sockets', async () => {
    const proto = net.Socket.prototype;
    const original = proto.setNoDelay;
    const calls: Array<{ sock: net.Socket; noDelay: boolean | undefined }> = [];
    proto.setNoDelay = function (this: net.Socket, noDelay?: boolean) {
      calls.push({ sock: this, noDelay });
      return original.call(this, noDelay);
    };
    let ts;
    try {
      ts = await startServer({ handler: hello });
      const port = ts.port;
      assert.equal(await execOnce(port), 'hello testuser\n');
      const serverSide = calls.filter((c) => c.sock.localPort === port && c.sock.remotePort !== port);
      assert.ok(serverSide.length >= 1, 'setNoDelay called on the accepted socket');
      assert.ok(serverSide.every((c) => c.noDelay === true || c.noDelay === undefined));
    } finally {
      proto.setNoDelay = original;
      await ts?.close();
    }
  });
});
