/**
 * The per-connection Context: permissions and values set during auth, metadata (session id,
 * versions, addresses), the abort signal, and the 'connection' / close callbacks.
 */
import '../helpers/harness.js';
import { connect as netConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { describe, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import ssh2 from 'ssh2';
import { closedAfterEach, connect, exec, waitFor } from '../helpers/harness.js';
import type { Context, Session } from '../../src/index.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every test is bounded, so a regression fails instead of hanging the run. */
const test = (name: string, fn: () => Promise<void>): void => {
  nodeTest(name, { timeout: 5000 }, fn);
};

/** Clients and servers closed after each test, even one that timed out. */
const { start, clients: openClients } = closedAfterEach();

async function client(port: number, config: ssh2.ConnectConfig = {}): Promise<ssh2.Client> {
  const c = await connect(port, config);
  openClients.add(c);
  return c;
}

/** Ends the client and waits for its socket to close. */
function end(c: ssh2.Client): Promise<void> {
  return new Promise((resolve) => {
    c.once('close', () => resolve());
    c.end();
  });
}

describe('values set during authentication', () => {
  test('permissions set by the passwordHandler reach the session (TestSetPermissions)', async () => {
    const seen: Array<Record<string, string>> = [];
    const ts = await start({
      passwordHandler: (ctx) => {
        ctx.permissions.extensions['foo'] = 'bar';
        ctx.permissions.criticalOptions['source-address'] = '127.0.0.1';
        return true;
      },
      handler: (s) => {
        seen.push({ ...s.permissions.extensions, ...s.permissions.criticalOptions });
        s.write(s.permissions.extensions['foo'] ?? '');
      },
    });
    const c = await client(ts.port, { password: 'x' });
    const r = await exec(c, 'true');
    assert.equal(r.stdout.toString(), 'bar');
    assert.deepEqual(seen, [{ foo: 'bar', 'source-address': '127.0.0.1' }]);
    await end(c);
  });

  test("a session's permissions are a copy: changing them does not change the connection's", async () => {
    const ctxs: Context[] = [];
    const ts = await start({
      passwordHandler: (ctx) => {
        ctx.permissions.extensions['foo'] = 'bar';
        return true;
      },
      handler: (s) => {
        ctxs.push(s.context);
        s.permissions.extensions['foo'] = 'changed';
      },
    });
    const c = await client(ts.port, { password: 'x' });
    await exec(c, 'true');
    assert.equal(ctxs[0]?.permissions.extensions['foo'], 'bar');
    await end(c);
  });

  test('a value stored with ctx.set in the passwordHandler is read with s.context.get (TestSetValue)', async () => {
    const key = { some: 'object key' };
    const values: unknown[] = [];
    const ts = await start({
      passwordHandler: (ctx) => {
        ctx.set('k', 'v');
        ctx.set(key, 42);
        return true;
      },
      handler: (s) => {
        values.push(s.context.get('k'), s.context.get(key), s.context.get('missing'));
      },
    });
    const c = await client(ts.port, { password: 'x' });
    await exec(c, 'true');
    assert.deepEqual(values, ['v', 42, undefined]);
    await end(c);
  });

  test('values are shared by the sessions of one connection, not across connections', async () => {
    const seen: unknown[] = [];
    const ts = await start({
      handler: (s) => {
        seen.push(s.context.get('n'));
        s.context.set('n', ((s.context.get<number>('n')) ?? 0) + 1);
      },
    });
    const a = await client(ts.port);
    await exec(a, 'true');
    await exec(a, 'true');
    const b = await client(ts.port);
    await exec(b, 'true');
    assert.deepEqual(seen, [undefined, 1, undefined]);
    await Promise.all([end(a), end(b)]);
  });
});

describe('metadata', () => {
  test('ctx.sessionId is the hex exchange hash the client computed, already during auth', async () => {
    const duringAuth: string[] = [];
    const inSession: string[] = [];
    const ts = await start({
      passwordHandler: (ctx) => {
        duringAuth.push(ctx.sessionId);
        return true;
      },
      handler: (s) => {
        inSession.push(s.context.sessionId);
      },
    });
    const c = await client(ts.port, { password: 'x' });
    await exec(c, 'true');
    const expected = ((c as Any)._protocol._kex.sessionID as Buffer).toString('hex');
    assert.match(inSession[0] ?? '', /^[0-9a-f]{64}$/);
    assert.equal(inSession[0], expected);
    assert.deepEqual(duringAuth, [expected]);
    await end(c);
  });

  test('ctx.clientVersion is the identification line the client sent', async () => {
    const versions: string[] = [];
    const ts = await start({ handler: (s) => void versions.push(s.context.clientVersion) });
    const a = await client(ts.port);
    await exec(a, 'true');
    const b = await client(ts.port, { ident: 'Custom_1.2' });
    await exec(b, 'true');
    assert.ok(versions[0]?.startsWith('SSH-2.0-ssh2js'), versions[0]);
    assert.equal(versions[1], 'SSH-2.0-Custom_1.2');
    await Promise.all([end(a), end(b)]);
  });

  for (const [label, options, expected] of [
    ['by default', {}, 'SSH-2.0-glidessh'],
    ["with version 'MyApp_1.0'", { version: 'MyApp_1.0' }, 'SSH-2.0-MyApp_1.0'],
  ] as const) {
    test(`ctx.serverVersion ${label} is ${expected}, the line the client received`, async () => {
      const versions: string[] = [];
      const ts = await start({ ...options, handler: (s) => void versions.push(s.context.serverVersion) });
      const debug: string[] = [];
      const c = await client(ts.port, { debug: (line: string) => debug.push(line) });
      await exec(c, 'true');
      assert.deepEqual(versions, [expected]);
      // The client's debug log is the public record of the ident it received.
      const remote = debug.find((l) => l.includes('Remote ident'));
      assert.ok(remote, 'client logged the remote ident');
      assert.ok(remote.includes(`'${expected}'`), remote);
      assert.equal((c as Any)._remoteVer, expected.slice('SSH-2.0-'.length));
      await end(c);
    });
  }

  test("ctx and session addresses match the client socket's", async () => {
    const seen: Array<Record<string, unknown>> = [];
    const ts = await start({
      handler: (s) => {
        const ctx = s.context;
        seen.push({
          ctx: [ctx.remoteAddress, ctx.remotePort, ctx.localAddress, ctx.localPort],
          session: [s.remoteAddress, s.remotePort, s.localAddress, s.localPort],
        });
      },
    });
    const sock: Socket = netConnect(ts.port, '127.0.0.1');
    await once(sock, 'connect');
    const c = await client(ts.port, { sock });
    await exec(c, 'true');
    const expected = [sock.localAddress, sock.localPort, sock.remoteAddress, sock.remotePort];
    assert.deepEqual(expected, ['127.0.0.1', sock.localPort, '127.0.0.1', ts.port]);
    assert.deepEqual(seen, [{ ctx: expected, session: expected }]);
    await end(c);
  });

  test('ctx.server is the server', async () => {
    const servers: unknown[] = [];
    const ts = await start({ handler: (s) => void servers.push(s.context.server) });
    const c = await client(ts.port);
    await exec(c, 'true');
    assert.equal(servers[0], ts.server);
    await end(c);
  });
});

describe('lifecycle', () => {
  test('ctx.signal and session.signal abort when the client closes the connection', async () => {
    const sessions: Session[] = [];
    const ts = await start({
      handler: async (s) => {
        sessions.push(s);
        await new Promise((resolve) => s.signal.addEventListener('abort', resolve, { once: true }));
      },
    });
    const c = await client(ts.port);
    c.exec('sleep', () => undefined);
    await waitFor(() => sessions.length === 1, 2000, 'the session');
    const s = sessions[0]!;
    assert.equal(s.context.signal.aborted, false);
    assert.equal(s.signal.aborted, false);
    const ctxAborted = new Promise((resolve) => s.context.signal.addEventListener('abort', resolve, { once: true }));
    await end(c);
    await ctxAborted;
    assert.equal(s.context.signal.aborted, true);
    assert.ok(s.context.signal.reason instanceof Error, 'the reason says why');
    await waitFor(() => s.signal.aborted, 2000, 'session.signal');
  });

  test("the 'connection' event gives the ctx that handlers and sessions see", async () => {
    const events: Context[] = [];
    const inAuth: Context[] = [];
    const inSession: Context[] = [];
    const ts = await start({
      passwordHandler: (ctx) => {
        inAuth.push(ctx);
        return true;
      },
      handler: (s) => void inSession.push(s.context),
    });
    ts.server.on('connection', (ctx) => events.push(ctx));
    const c = await client(ts.port, { password: 'x' });
    await exec(c, 'true');
    assert.equal(events.length, 1);
    assert.equal(inAuth[0], events[0]);
    assert.equal(inSession[0], events[0]);
    await end(c);
  });

  test('connectionCloseCallback fires once per connection with its ctx', async () => {
    const events: Context[] = [];
    const closed: Context[] = [];
    const ts = await start({
      handler: () => undefined,
      connectionCloseCallback: (ctx) => {
        assert.equal(ctx.signal.aborted, true, 'the signal has aborted by then');
        closed.push(ctx);
      },
    });
    ts.server.on('connection', (ctx) => events.push(ctx));
    const a = await client(ts.port);
    const b = await client(ts.port);
    await exec(a, 'true');
    assert.equal(closed.length, 0, 'not while the connections are open');
    await end(a);
    await waitFor(() => closed.length === 1, 2000, 'first close');
    assert.equal(closed[0], events[0]);
    await end(b);
    await waitFor(() => closed.length === 2, 2000, 'second close');
    assert.equal(closed[1], events[1]);
    assert.notEqual(events[0], events[1], 'one context per connection');
    await ts.close();
    assert.equal(closed.length, 2, 'exactly once each');
  });

  test('connectionCloseCallback also fires for a connection that failed authentication', async () => {
    const events: Context[] = [];
    const closed: Context[] = [];
    const ts = await start({
      passwordHandler: () => false,
      connectionCloseCallback: (ctx) => void closed.push(ctx),
    });
    ts.server.on('connection', (ctx) => events.push(ctx));
    const c = new ssh2.Client();
    openClients.add(c);
    c.on('error', () => undefined);
    const gone = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.connect({ host: '127.0.0.1', port: ts.port, username: 'testuser', password: 'bad' });
    await gone;
    await waitFor(() => closed.length === 1, 2000, 'close callback');
    assert.equal(closed[0], events[0]);
  });
});
