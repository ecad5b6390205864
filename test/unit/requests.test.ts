/**
 * Session request rules, channel opens and global requests, driven with raw messages from an
 * ssh2 client (test/helpers/raw.ts) so that every request can ask for a reply.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import ssh2 from 'ssh2';
import { collect, connect, exec, startServer, waitFor, type ExecResult, type TestServer } from '../helpers/harness.js';
import { channelRequest, globalRequest, openChannel, ptyData, sendRaw, Wire, windowData } from '../helpers/raw.js';
import { encodeTerminalModes } from '../../src/pty.js';
import {
  ChannelRejectReason,
  defaultSessionHandler,
  type Context,
  type GlobalRequest,
  type Pty,
  type ServerOptions,
  type Session,
} from '../../src/index.js';

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every test is bounded: a missing feature must fail, not hang. */
const T = { timeout: 10_000 };

interface Setup {
  srv: TestServer;
  client: ssh2.Client;
  /** Sessions the handler was called with, in order. */
  sessions: Session[];
}

/** Keeps a session open until its channel closes. */
const untilClosed = (s: Session): Promise<void> =>
  new Promise((resolve) => {
    if (s.signal.aborted) resolve();
    else s.signal.addEventListener('abort', () => resolve(), { once: true });
  });

/**
 * Starts a server whose handler records its session and keeps it open until the client closes
 * the channel, and connects an ssh2 client. Both are closed after the test.
 */
async function setup(t: TestContext, options: ServerOptions = {}): Promise<Setup> {
  const sessions: Session[] = [];
  const srv = await startServer({
    handler: async (s) => {
      sessions.push(s);
      await untilClosed(s);
    },
    ...options,
  });
  let client: ssh2.Client | undefined;
  t.after(async () => {
    client?.end();
    await srv.close();
  });
  client = await connect(srv.port);
  client.on('error', () => undefined);
  return { srv, client, sessions };
}

/** Opens a bare session channel; its output is collected from the start. */
async function rawSession(client: ssh2.Client): Promise<{ ch: ssh2.ClientChannel; done: Promise<ExecResult> }> {
  const ch = await openChannel(client, 'session');
  return { ch, done: collect(ch) };
}

/** Opens a session channel and starts a shell on it (answered true). */
async function rawShell(client: ssh2.Client): Promise<{ ch: ssh2.ClientChannel; done: Promise<ExecResult> }> {
  const r = await rawSession(client);
  assert.equal(await channelRequest(client, r.ch, 'shell', true), true);
  return r;
}

/** Counts every CHANNEL_SUCCESS / CHANNEL_FAILURE the client receives. */
function countChannelReplies(client: ssh2.Client): { count: () => number } {
  const h = (client as Any)._protocol._handlers;
  let n = 0;
  for (const name of ['CHANNEL_SUCCESS', 'CHANNEL_FAILURE']) {
    const orig = h[name];
    h[name] = (...args: unknown[]) => {
      n++;
      return orig(...args);
    };
  }
  return { count: () => n };
}

/** Records every REQUEST_SUCCESS / REQUEST_FAILURE, in arrival order (for concurrent global requests). */
function recordGlobalReplies(client: ssh2.Client): Array<{ ok: boolean; data?: string }> {
  const h = (client as Any)._protocol._handlers;
  const replies: Array<{ ok: boolean; data?: string }> = [];
  h.REQUEST_SUCCESS = (_p: unknown, d: Buffer | null) => replies.push(d ? { ok: true, data: d.toString() } : { ok: true });
  h.REQUEST_FAILURE = () => replies.push({ ok: false });
  return replies;
}

/** Sends a global request without waiting for anything. */
function sendGlobal(client: ssh2.Client, name: string, wantReply: boolean, data: Buffer = Buffer.alloc(0)): void {
  sendRaw(client, new Wire().byte(80).str(name).bool(wantReply).raw(data).buf());
}

/** Opens a channel with the ssh2 client's exec; rejects when the server refuses. */
function execChannel(client: ssh2.Client, command: string): Promise<ssh2.ClientChannel> {
  return new Promise((resolve, reject) => client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))));
}

/** Opens a subsystem with the ssh2 client; resolves with its collected result. */
function subsystem(client: ssh2.Client, name: string): Promise<ExecResult> {
  return new Promise((resolve, reject) =>
    client.subsys(name, (err, ch) => {
      if (err) return reject(err);
      resolve(collect(ch));
      ch.end();
    }),
  );
}

/** A follow-up exec on a new channel works: the connection survived. */
async function assertConnectionWorks(client: ssh2.Client, sessions: Session[]): Promise<void> {
  const before = sessions.length;
  const ch = await execChannel(client, 'still alive');
  await waitFor(() => sessions.length === before + 1, 2000, 'follow-up session');
  assert.equal(sessions.at(-1)!.rawCommand, 'still alive');
  const done = collect(ch);
  ch.close();
  await done;
}

describe('session request rules', () => {
  it('every want-reply request gets exactly one reply, also after the session started', T, async (t) => {
    const { client, sessions } = await setup(t);
    const replies = countChannelReplies(client);
    const { ch } = await rawShell(client);
    assert.equal(replies.count(), 1);
    // Sent back to back without waiting; ssh2 itself would answer none of these.
    const batch: Array<[string, Buffer, boolean]> = [
      ['env', new Wire().str('LANG').str('C').buf(), false],
      ['pty-req', ptyData('xterm', 80, 24), false],
      ['window-change', windowData(100, 30), false],
      ['shell', Buffer.alloc(0), false],
      ['exec', new Wire().str('ls').buf(), false],
      ['subsystem', new Wire().str('sftp').buf(), false],
      ['keepalive@openssh.com', Buffer.alloc(0), false],
      ['signal', new Wire().str('INT').buf(), true],
      ['break', new Wire().u32(100).buf(), false],
      ['x11-req', new Wire().bool(false).str('MIT-MAGIC-COOKIE-1').str('00').u32(0).buf(), false],
      ['foo@example.com', Buffer.from('x'), false],
    ];
    const answers = await Promise.all(batch.map(([type, data]) => channelRequest(client, ch, type, true, data)));
    assert.deepEqual(
      answers,
      batch.map(([, , ok]) => ok),
    );
    // Any duplicate reply to the batch would have come before the answer to this probe.
    assert.equal(await channelRequest(client, ch, 'foo@example.com', true), false);
    assert.equal(replies.count(), 1 + batch.length + 1);
    // Requests without want-reply get none.
    await channelRequest(client, ch, 'foo@example.com', false);
    await channelRequest(client, ch, 'env', false, new Wire().str('A').str('B').buf());
    assert.equal(await channelRequest(client, ch, 'bar@example.com', true), false);
    assert.equal(replies.count(), 1 + batch.length + 2);
    // None of the refused requests changed the session.
    const s = sessions[0]!;
    assert.equal(sessions.length, 1);
    assert.deepEqual(s.environ, []);
    assert.equal(s.pty, undefined);
    assert.equal(s.rawCommand, '');
    assert.equal(s.subsystem, '');
    ch.close();
  });

  it('pty-req after shell is refused with a reply', T, async (t) => {
    const { client, sessions } = await setup(t);
    const { ch } = await rawShell(client);
    assert.equal(await channelRequest(client, ch, 'pty-req', true, ptyData('xterm', 80, 24)), false);
    await waitFor(() => sessions.length === 1);
    assert.equal(sessions[0]!.pty, undefined);
    ch.close();
  });

  it('a second pty-req is refused and the first one stands', T, async (t) => {
    const { client, sessions } = await setup(t);
    const { ch } = await rawSession(client);
    assert.equal(await channelRequest(client, ch, 'pty-req', true, ptyData('vt100', 80, 24)), true);
    assert.equal(await channelRequest(client, ch, 'pty-req', true, ptyData('xterm', 132, 50)), false);
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    await waitFor(() => sessions.length === 1);
    const pty = sessions[0]!.pty!;
    assert.equal(pty.term, 'vt100');
    assert.deepEqual(pty.window, { width: 80, height: 24, widthPixels: 0, heightPixels: 0 });
    ch.close();
  });

  it('env before the start is accepted and env after shell is refused', T, async (t) => {
    const { client, sessions } = await setup(t);
    const { ch } = await rawSession(client);
    assert.equal(await channelRequest(client, ch, 'env', true, new Wire().str('A').str('1').buf()), true);
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    assert.equal(await channelRequest(client, ch, 'env', true, new Wire().str('B').str('2').buf()), false);
    await waitFor(() => sessions.length === 1);
    assert.deepEqual(sessions[0]!.environ, ['A=1']);
    ch.close();
  });

  it('a second shell, exec or subsystem on a started session is refused', T, async (t) => {
    const subsystemCalls: string[] = [];
    const { client, sessions } = await setup(t, {
      subsystemHandlers: { sftp: (s) => void subsystemCalls.push(s.subsystem) },
    });
    const { ch } = await rawSession(client);
    assert.equal(await channelRequest(client, ch, 'exec', true, new Wire().str('first').buf()), true);
    assert.equal(await channelRequest(client, ch, 'shell', true), false);
    assert.equal(await channelRequest(client, ch, 'exec', true, new Wire().str('second').buf()), false);
    assert.equal(await channelRequest(client, ch, 'subsystem', true, new Wire().str('sftp').buf()), false);
    await waitFor(() => sessions.length === 1);
    assert.equal(sessions[0]!.rawCommand, 'first');
    assert.equal(sessions[0]!.subsystem, '');
    assert.deepEqual(subsystemCalls, []);
    ch.close();
  });

  it('keepalive@openssh.com with want-reply after shell is answered (false)', T, async (t) => {
    const { client } = await setup(t);
    const { ch } = await rawShell(client);
    assert.equal(await channelRequest(client, ch, 'keepalive@openssh.com', true), false);
    assert.equal(await channelRequest(client, ch, 'keepalive@openssh.com', true), false);
    ch.close();
  });

  it('window-change before pty-req is refused', T, async (t) => {
    const { client, sessions } = await setup(t);
    const { ch } = await rawSession(client);
    assert.equal(await channelRequest(client, ch, 'window-change', true, windowData(100, 30)), false);
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    assert.equal(await channelRequest(client, ch, 'window-change', true, windowData(100, 30)), false);
    await waitFor(() => sessions.length === 1);
    assert.equal(sessions[0]!.pty, undefined);
    ch.close();
  });

  it('window-change with 0 cols or 0 rows is refused and the window is unchanged', T, async (t) => {
    const { client, sessions } = await setup(t);
    const { ch } = await rawSession(client);
    assert.equal(await channelRequest(client, ch, 'pty-req', true, ptyData('xterm', 80, 24)), true);
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    await waitFor(() => sessions.length === 1);
    const changes: unknown[] = [];
    sessions[0]!.on('window-change', (w) => changes.push(w));
    assert.equal(await channelRequest(client, ch, 'window-change', true, windowData(0, 30)), false);
    assert.equal(await channelRequest(client, ch, 'window-change', true, windowData(100, 0)), false);
    assert.equal(await channelRequest(client, ch, 'window-change', true, windowData(0, 0, [800, 600])), false);
    assert.deepEqual(changes, []);
    assert.deepEqual(sessions[0]!.pty!.window, { width: 80, height: 24, widthPixels: 0, heightPixels: 0 });
    assert.equal(await channelRequest(client, ch, 'window-change', true, windowData(1, 1)), true);
    assert.deepEqual(changes, [{ width: 1, height: 1, widthPixels: 0, heightPixels: 0 }]);
    ch.close();
  });

  it('unknown requests (x11-req, foo@example.com) are refused before and after the start', T, async (t) => {
    const { client } = await setup(t);
    const { ch } = await rawSession(client);
    const x11 = new Wire().bool(false).str('MIT-MAGIC-COOKIE-1').str('0123456789abcdef').u32(0).buf();
    assert.equal(await channelRequest(client, ch, 'x11-req', true, x11), false);
    assert.equal(await channelRequest(client, ch, 'foo@example.com', true, Buffer.from('payload')), false);
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    assert.equal(await channelRequest(client, ch, 'x11-req', true, x11), false);
    assert.equal(await channelRequest(client, ch, 'foo@example.com', true), false);
    ch.close();
  });

  it('malformed or truncated request data is refused with a reply and the connection keeps working', T, async (t) => {
    const { client, sessions, srv } = await setup(t);
    const { ch } = await rawSession(client);
    const truncatedTerm = new Wire().u32(100).raw(Buffer.from('xterm')).buf();
    const hugeExec = new Wire().u32(0xffffffff).raw(Buffer.from('ls')).buf();
    const cases: Array<[string, Buffer]> = [
      ['pty-req', truncatedTerm],
      ['pty-req', ptyData('xterm', 80, 24).subarray(0, 20)], // cut inside the sizes
      ['pty-req', new Wire().str('xterm').u32(80).u32(24).u32(0).u32(0).u32(50).raw(Buffer.from([0])).buf()], // modes cut
      ['exec', hugeExec],
      ['exec', Buffer.alloc(0)],
      ['exec', Buffer.from([0, 0])],
      ['env', new Wire().str('ONLY_NAME').buf()],
      ['env', new Wire().u32(0x7fffffff).buf()],
      ['subsystem', new Wire().u32(0xffffffff).buf()],
      ['signal', Buffer.alloc(0)],
      ['break', Buffer.from([0, 1])],
      ['window-change', Buffer.from([0, 0, 0])],
    ];
    for (const [type, data] of cases) {
      assert.equal(await channelRequest(client, ch, type, true, data), false, `${type} ${data.toString('hex')}`);
    }
    // The same channel still takes a valid request, and a new channel works too.
    assert.equal(await channelRequest(client, ch, 'exec', true, new Wire().str('ok').buf()), true);
    await waitFor(() => sessions.length === 1);
    assert.equal(sessions[0]!.rawCommand, 'ok');
    assert.equal(sessions[0]!.pty, undefined);
    await assertConnectionWorks(client, sessions);
    assert.deepEqual(srv.errors, []);
    ch.close();
  });

  it('a pty-req with 0 cols and rows is accepted (the client has no size)', T, async (t) => {
    const { client, sessions } = await setup(t);
    const { ch } = await rawSession(client);
    assert.equal(await channelRequest(client, ch, 'pty-req', true, ptyData('dumb', 0, 0)), true);
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    await waitFor(() => sessions.length === 1);
    assert.deepEqual({ ...sessions[0]!.pty!, modes: { ...sessions[0]!.pty!.modes } }, {
      term: 'dumb',
      window: { width: 0, height: 0, widthPixels: 0, heightPixels: 0 },
      modes: {},
    });
    ch.close();
  });
});

describe('sessionRequestCallback and ptyCallback', () => {
  it('sessionRequestCallback false refuses shell, exec and subsystem, and sees the session with rawCommand set', T, async (t) => {
    const calls: unknown[] = [];
    const handled: string[] = [];
    const { client, sessions } = await setup(t, {
      sessionRequestCallback: (s, type) => {
        calls.push({ type, raw: s.rawCommand, command: s.command, sub: s.subsystem, user: s.user });
        return false;
      },
      subsystemHandlers: { sftp: (s) => void handled.push(s.subsystem) },
    });
    await assert.rejects(execChannel(client, "do 'the thing'"), /Unable to exec/);
    await assert.rejects(
      new Promise((resolve, reject) => client.shell((err, ch) => (err ? reject(err) : resolve(ch)))),
      /Unable to open shell/,
    );
    await assert.rejects(subsystem(client, 'sftp'), /Unable to start subsystem/);
    assert.deepEqual(calls, [
      { type: 'exec', raw: "do 'the thing'", command: ['do', 'the thing'], sub: '', user: 'testuser' },
      { type: 'shell', raw: '', command: [], sub: '', user: 'testuser' },
      { type: 'subsystem', raw: '', command: [], sub: 'sftp', user: 'testuser' },
    ]);
    assert.deepEqual(sessions, []);
    assert.deepEqual(handled, []);
  });

  it('sessionRequestCallback true lets the session start', T, async (t) => {
    const types: string[] = [];
    const { client } = await setup(t, {
      sessionRequestCallback: async (_s, type) => {
        types.push(type);
        return true;
      },
      handler: (s) => void s.write(`ran ${s.rawCommand}`),
    });
    const r = await exec(client, 'cmd');
    assert.equal(r.stdout.toString(), 'ran cmd');
    assert.equal(r.code, 0);
    assert.deepEqual(types, ['exec']);
  });

  it("a sessionRequestCallback that throws refuses, and the error goes to 'error'", T, async (t) => {
    const boom = new Error('callback boom');
    const { client, srv, sessions } = await setup(t, {
      sessionRequestCallback: () => {
        throw boom;
      },
    });
    await assert.rejects(execChannel(client, 'x'), /Unable to exec/);
    assert.deepEqual(sessions, []);
    await waitFor(() => srv.errors.length === 1, 2000, "'error' event");
    const err = srv.errors[0] as Error & { code?: string; hook?: string; context?: Context };
    assert.equal(err.code, 'ERR_HOOK');
    assert.equal(err.hook, 'sessionRequestCallback');
    assert.equal(err.cause, boom);
    assert.equal(err.context?.user, 'testuser');
  });

  it('ptyCallback false refuses the pty-req and s.pty stays undefined (no CRLF translation)', T, async (t) => {
    const offered: Pty[] = [];
    const { client } = await setup(t, {
      ptyCallback: (_ctx, pty) => {
        offered.push({ ...pty, modes: { ...pty.modes } });
        return false;
      },
      handler: (s) => void s.write(`pty=${String(s.pty)}\n`),
    });
    const { ch, done } = await rawSession(client);
    const modes = encodeTerminalModes({ VINTR: 3, ECHO: 0 });
    assert.equal(await channelRequest(client, ch, 'pty-req', true, ptyData('xterm', 90, 33, modes, [9, 3])), false);
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    const r = await done;
    assert.equal(r.stdout.toString(), 'pty=undefined\n');
    assert.equal(r.code, 0);
    assert.deepEqual(offered, [
      { term: 'xterm', window: { width: 90, height: 33, widthPixels: 9, heightPixels: 3 }, modes: { VINTR: 3, ECHO: 0 } },
    ]);
  });

  it('ptyCallback true accepts the pty-req', T, async (t) => {
    const { client, sessions } = await setup(t, { ptyCallback: async () => true });
    const { ch } = await rawSession(client);
    assert.equal(await channelRequest(client, ch, 'pty-req', true, ptyData('xterm', 90, 33)), true);
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    await waitFor(() => sessions.length === 1);
    assert.equal(sessions[0]!.pty?.term, 'xterm');
    ch.close();
  });
});

describe('subsystems', () => {
  it('a subsystem request with no subsystem handlers is refused', T, async (t) => {
    const { client, sessions } = await setup(t);
    await assert.rejects(subsystem(client, 'sftp'), /Unable to start subsystem/);
    const { ch } = await rawSession(client);
    assert.equal(await channelRequest(client, ch, 'subsystem', true, new Wire().str('sftp').buf()), false);
    // The refusal did not start the session: a shell still can.
    assert.equal(await channelRequest(client, ch, 'shell', true), true);
    await waitFor(() => sessions.length === 1);
    assert.equal(sessions[0]!.subsystem, '');
    ch.close();
  });

  it("subsystemHandlers: { myproto } runs for 'myproto' with s.subsystem set; other names are refused", T, async (t) => {
    let mainHandlerCalls = 0;
    const { client } = await setup(t, {
      handler: () => void mainHandlerCalls++,
      subsystemHandlers: {
        myproto: async (s) => {
          s.write(JSON.stringify({ sub: s.subsystem, raw: s.rawCommand, command: s.command }));
          await s.exit(4);
        },
      },
    });
    const r = await subsystem(client, 'myproto');
    assert.deepEqual(JSON.parse(r.stdout.toString()), { sub: 'myproto', raw: '', command: [] });
    assert.equal(r.code, 4);
    await assert.rejects(subsystem(client, 'other'), /Unable to start subsystem/);
    assert.equal(mainHandlerCalls, 0);
  });

  it('a "default" subsystem handler handles names without their own handler', T, async (t) => {
    const { client } = await setup(t, {
      subsystemHandlers: {
        known: (s) => void s.write(`known:${s.subsystem}`),
        default: (s) => void s.write(`default:${s.subsystem}`),
      },
    });
    assert.equal((await subsystem(client, 'whatever')).stdout.toString(), 'default:whatever');
    assert.equal((await subsystem(client, 'known')).stdout.toString(), 'known:known');
    // Inherited object keys are not handler names.
    assert.equal((await subsystem(client, 'toString')).stdout.toString(), 'default:toString');
  });
});

describe('channel handlers', () => {
  it('an unknown channel type is rejected with reason 3 and "unsupported channel type"', T, async (t) => {
    const { client, sessions } = await setup(t);
    const err = (await openChannel(client, 'foo@example.com').then(
      () => assert.fail('channel was opened'),
      (e: unknown) => e,
    )) as Error & { reason?: number };
    assert.equal(err.reason, ChannelRejectReason.UNKNOWN_CHANNEL_TYPE);
    assert.equal(err.reason, 3);
    assert.equal(err.message, '(SSH) Channel open failure: unsupported channel type');
    // With the default registry, direct-tcpip is not served either.
    const tcpip = new Wire().str('127.0.0.1').u32(22).str('127.0.0.1').u32(5555).buf();
    const err2 = (await openChannel(client, 'direct-tcpip', tcpip).then(
      () => assert.fail('channel was opened'),
      (e: unknown) => e,
    )) as Error & { reason?: number };
    assert.equal(err2.reason, 3);
    assert.equal(err2.message, '(SSH) Channel open failure: unsupported channel type');
    await assertConnectionWorks(client, sessions);
  });

  it('a "default" channel handler gets other types with their extra data and can accept or reject', T, async (t) => {
    const seen: Array<{ type: string; extra: string }> = [];
    const { client, sessions } = await setup(t, {
      channelHandlers: {
        session: defaultSessionHandler,
        default: (_ctx, nc) => {
          seen.push({ type: nc.type, extra: nc.extraData.toString('hex') });
          if (nc.type === 'x-accept@example.com') {
            const ch = nc.accept()!;
            ch.write('hello from the channel');
            ch.end();
            // Later answers are ignored.
            nc.reject(ChannelRejectReason.CONNECT_FAILED, 'too late');
            assert.equal(nc.accept(), undefined);
          } else {
            nc.reject(ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED, 'go away');
          }
        },
      },
    });
    const extra = new Wire().str('arg').u32(7).buf();
    const ch = await openChannel(client, 'x-accept@example.com', extra);
    const r = await collect(ch);
    assert.equal(r.stdout.toString(), 'hello from the channel');
    const err = (await openChannel(client, 'x-reject@example.com').then(
      () => assert.fail('channel was opened'),
      (e: unknown) => e,
    )) as Error & { reason?: number };
    assert.equal(err.reason, 1);
    assert.equal(err.message, '(SSH) Channel open failure: go away');
    assert.deepEqual(seen, [
      { type: 'x-accept@example.com', extra: extra.toString('hex') },
      { type: 'x-reject@example.com', extra: '' },
    ]);
    await assertConnectionWorks(client, sessions);
  });

  it('want-reply requests on a channel a channel handler accepted are answered false', T, async (t) => {
    const { client } = await setup(t, {
      channelHandlers: {
        default: (_ctx, nc) => {
          const ch = nc.accept()!;
          ch.on('data', (d: Buffer) => ch.write(d));
        },
      },
    });
    const ch = await openChannel(client, 'x-open@example.com');
    assert.equal(await channelRequest(client, ch, 'foo@example.com', true), false);
    assert.equal(await channelRequest(client, ch, 'exec', true, new Wire().str('ls').buf()), false);
    // The channel still carries data.
    const echoed = new Promise<string>((resolve) => ch.once('data', (d: Buffer) => resolve(d.toString())));
    ch.write('ping');
    assert.equal(await echoed, 'ping');
    ch.close();
  });

  it('a channel handler that throws, rejects or returns without answering gives an open failure and the connection keeps working', T, async (t) => {
    const boom = new Error('channel boom');
    const { client, sessions, srv } = await setup(t, {
      channelHandlers: {
        session: defaultSessionHandler,
        'x-throw': () => {
          throw boom;
        },
        'x-reject-async': async () => {
          await new Promise((r) => setImmediate(r));
          throw new Error('async channel boom');
        },
        'x-silent': async () => {
          await new Promise((r) => setImmediate(r));
        },
      },
    });
    for (const type of ['x-throw', 'x-reject-async', 'x-silent']) {
      const err = (await openChannel(client, type).then(
        () => assert.fail(`${type} was opened`),
        (e: unknown) => e,
      )) as Error & { reason?: number };
      assert.equal(err.reason, ChannelRejectReason.CONNECT_FAILED, type);
      assert.equal(err.message, '(SSH) Channel open failure: channel not accepted', type);
    }
    await assertConnectionWorks(client, sessions);
    assert.equal(srv.errors.length, 2);
    const [e1, e2] = srv.errors as Array<Error & { code?: string; hook?: string; context?: Context }>;
    assert.equal(e1!.code, 'ERR_HOOK');
    assert.equal(e1!.hook, 'channelHandlers.x-throw');
    assert.equal(e1!.cause, boom);
    assert.equal(e1!.context?.user, 'testuser');
    assert.equal(e2!.hook, 'channelHandlers.x-reject-async');
    assert.equal((e2!.cause as Error).message, 'async channel boom');
  });
});

describe('global requests', () => {
  it('an unknown global request is answered false', T, async (t) => {
    const { client } = await setup(t);
    assert.deepEqual(await globalRequest(client, 'foo@example.com'), { ok: false });
    assert.deepEqual(await globalRequest(client, 'tcpip-forward', new Wire().str('127.0.0.1').u32(0).buf()), { ok: false });
    assert.deepEqual(await globalRequest(client, 'keepalive@openssh.com'), { ok: false });
  });

  it('a registered handler answers: true, false, or { ok, payload } with the payload sent', T, async (t) => {
    const requests: unknown[] = [];
    const { client } = await setup(t, {
      requestHandlers: {
        'yes@example.com': (_ctx, req: GlobalRequest) => {
          requests.push({ name: req.name, wantReply: req.wantReply, payload: req.payload.toString() });
          return true;
        },
        'no@example.com': async () => false,
        'data@example.com': async (_ctx, req) => ({ ok: true, payload: Buffer.concat([Buffer.from('echo:'), req.payload]) }),
        'nodata@example.com': () => ({ ok: false, payload: Buffer.from('ignored') }),
      },
    });
    assert.deepEqual(await globalRequest(client, 'yes@example.com', Buffer.from('abc')), { ok: true });
    assert.deepEqual(requests, [{ name: 'yes@example.com', wantReply: true, payload: 'abc' }]);
    assert.deepEqual(await globalRequest(client, 'no@example.com'), { ok: false });
    const withData = await globalRequest(client, 'data@example.com', Buffer.from('xyz'));
    assert.equal(withData.ok, true);
    assert.equal(withData.data?.toString(), 'echo:xyz');
    assert.deepEqual(await globalRequest(client, 'nodata@example.com'), { ok: false });
    assert.deepEqual(await globalRequest(client, 'unregistered@example.com'), { ok: false });
  });

  it('a global request without want-reply reaches the handler and gets no reply', T, async (t) => {
    const names: Array<[string, boolean]> = [];
    const { client } = await setup(t, {
      requestHandlers: { default: (_ctx, req) => (names.push([req.name, req.wantReply]), true) },
    });
    const replies = recordGlobalReplies(client);
    sendGlobal(client, 'quiet@example.com', false);
    sendGlobal(client, 'loud@example.com', true);
    await waitFor(() => replies.length === 1, 2000, 'reply');
    // A reply to the first one would have come before the second's.
    sendGlobal(client, 'probe@example.com', true);
    await waitFor(() => replies.length === 2, 2000, 'probe reply');
    assert.deepEqual(replies, [{ ok: true }, { ok: true }]);
    assert.deepEqual(names, [
      ['quiet@example.com', false],
      ['loud@example.com', true],
      ['probe@example.com', true],
    ]);
  });

  it('a "default" request handler answers names without their own handler', T, async (t) => {
    const { client } = await setup(t, {
      requestHandlers: {
        'own@example.com': () => ({ ok: true, payload: Buffer.from('own') }),
        default: (_ctx, req) => ({ ok: true, payload: Buffer.from(`default:${req.name}`) }),
      },
    });
    assert.equal((await globalRequest(client, 'own@example.com')).data?.toString(), 'own');
    assert.equal((await globalRequest(client, 'other@example.com')).data?.toString(), 'default:other@example.com');
    assert.equal((await globalRequest(client, 'constructor')).data?.toString(), 'default:constructor');
  });

  it('replies to global requests whose handlers finish in reverse order arrive in request order', T, async (t) => {
    const finished: string[] = [];
    // Handler n may finish only after handler n + 1 has finished; handler 4 finishes at once.
    const done = new Map<number, { promise: Promise<void>; resolve: () => void }>();
    for (const n of [1, 2, 3, 4, 5]) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      done.set(n, { promise, resolve });
    }
    done.get(5)!.resolve();
    const { client } = await setup(t, {
      requestHandlers: {
        default: async (_ctx, req) => {
          const n = Number(req.payload.toString());
          await done.get(n + 1)!.promise;
          finished.push(req.name);
          done.get(n)!.resolve();
          return n === 2 ? false : { ok: true, payload: Buffer.from(`r${n}`) };
        },
      },
    });
    const replies = recordGlobalReplies(client);
    for (const n of [1, 2, 3, 4]) sendGlobal(client, `req${n}@example.com`, true, Buffer.from(String(n)));
    await waitFor(() => replies.length === 4, 2000, 'four replies');
    assert.deepEqual(finished, ['req4@example.com', 'req3@example.com', 'req2@example.com', 'req1@example.com']);
    assert.deepEqual(replies, [{ ok: true, data: 'r1' }, { ok: false }, { ok: true, data: 'r3' }, { ok: true, data: 'r4' }]);
  });

  it("a global request handler that throws is answered false and reported on 'error'", T, async (t) => {
    const boom = new Error('request boom');
    const { client, srv, sessions } = await setup(t, {
      requestHandlers: {
        'boom@example.com': () => {
          throw boom;
        },
        'later@example.com': async () => {
          await new Promise((r) => setImmediate(r));
          throw new Error('async request boom');
        },
      },
    });
    assert.deepEqual(await globalRequest(client, 'boom@example.com'), { ok: false });
    assert.deepEqual(await globalRequest(client, 'later@example.com'), { ok: false });
    assert.equal(srv.errors.length, 2);
    const [e1, e2] = srv.errors as Array<Error & { code?: string; hook?: string; context?: Context }>;
    assert.equal(e1!.code, 'ERR_HOOK');
    assert.equal(e1!.hook, 'requestHandlers.boom@example.com');
    assert.equal(e1!.cause, boom);
    assert.equal(e1!.context?.user, 'testuser');
    assert.equal(e2!.hook, 'requestHandlers.later@example.com');
    await assertConnectionWorks(client, sessions);
  });
});
