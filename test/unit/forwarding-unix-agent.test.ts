/**
 * Unix-socket (OpenSSH streamlocal) and agent forwarding driven by an ssh2 client: both
 * directions of streamlocal with 4 MiB each way, socket modes and removal, and agent channels
 * (4 MiB echoed through a stand-in agent), the agentForwardingCallback, listener cleanup.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import ssh2 from 'ssh2';
import { exec, waitFor } from '../helpers/harness.js';
import { channelRequest, openChannel, Wire } from '../helpers/raw.js';
import {
  assertSessionWorks,
  exchange,
  exists,
  failure,
  forwardingOptions,
  MiB,
  setup,
  sha256,
  target,
} from '../helpers/forwarding.js';
import {
  agentRequested,
  ChannelRejectReason,
  forwardAgentConnections,
  InvalidOptionError,
  newAgentListener,
  PERMISSION_KEYS,
  Server,
  type ServerOptions,
  type Session,
} from '../../src/index.js';

const T = { timeout: 15_000 };
const SIZE = 4 * MiB;

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'glidessh-fwd-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** ssh2's client sends OpenSSH extensions only to servers it takes for OpenSSH. */
const OPENSSH_PEER: ssh2.ConnectConfig = { strictVendor: false };

describe('streamlocal (ssh -L / -R with Unix sockets)', () => {
  it('direct-streamlocal: allowed path moves 4 MiB each way; other paths are refused', T, async (t) => {
    const path = join(tmp, 'direct.sock');
    const tg = await target(t, SIZE, path);
    const { client } = await setup(t, forwardingOptions({ localUnixForwardingCallback: (_ctx, p) => p === path }), OPENSSH_PEER);
    const open = (p: string) =>
      new Promise<ssh2.ClientChannel>((resolve, reject) =>
        client.openssh_forwardOutStreamLocal(p, (err, ch) => (err ? reject(err) : resolve(ch))),
      );
    const sent = randomBytes(SIZE);
    assert.deepEqual(await exchange(await open(path), sent), { hash: sha256(tg.answer), bytes: SIZE });
    assert.deepEqual(tg.records, [{ received: sha256(sent), bytes: SIZE }]);
    const denied = await failure(open(join(tmp, 'other.sock')));
    assert.equal(denied.reason, ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED);
    await assertSessionWorks(client);
  });

  it('streamlocal-forward: a 0600 socket that forwards 4 MiB, removed on cancel and on disconnect; an existing file is kept', T, async (t) => {
    const tg = await target(t, SIZE);
    const { client } = await setup(t, forwardingOptions({ reverseUnixForwardingCallback: (_ctx, p) => p.startsWith(tmp) }), OPENSSH_PEER);
    const forwardIn = (p: string) =>
      new Promise<void>((resolve, reject) => client.openssh_forwardInStreamLocal(p, (err) => (err ? reject(err) : resolve())));
    const unforward = (p: string) =>
      new Promise<void>((resolve, reject) => client.openssh_unforwardInStreamLocal(p, (err) => (err ? reject(err) : resolve())));
    client.on('unix connection', (_info, accept) => {
      const ch = accept();
      const sock = createConnection({ port: tg.port, host: '127.0.0.1', allowHalfOpen: true });
      ch.pipe(sock).pipe(ch);
    });
    const path = join(tmp, 'remote.sock');
    await forwardIn(path);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const sent = randomBytes(SIZE);
    const r = await exchange(createConnection({ path, allowHalfOpen: true }), sent);
    assert.deepEqual(r, { hash: sha256(tg.answer), bytes: SIZE });
    assert.deepEqual(tg.records, [{ received: sha256(sent), bytes: SIZE }]);
    await unforward(path);
    assert.equal(exists(path), false, 'removed on cancel');

    const kept = join(tmp, 'existing');
    writeFileSync(kept, 'mine');
    await assert.rejects(forwardIn(kept));
    assert.equal(exists(kept), true);
    await assert.rejects(forwardIn('/elsewhere.sock'), 'denied by the callback');

    const second = join(tmp, 'remote2.sock');
    await forwardIn(second);
    assert.equal(exists(second), true);
    client.end();
    await waitFor(() => !exists(second), 5000, 'the socket file to go on disconnect');
  });
});

describe('agent forwarding', () => {
  /** A stand-in for the client's agent: echoes what it gets. */
  async function echoAgent(t: TestContext): Promise<string> {
    const path = join(tmp, `agent-${Math.random().toString(36).slice(2)}.sock`);
    const srv: NetServer = createServer((s) => s.pipe(s));
    srv.listen(path);
    await once(srv, 'listening');
    t.after(() => srv.close());
    return path;
  }

  it('forwards each local connection over its own auth-agent channel (4 MiB echoed); the listener dir goes on close', T, async (t) => {
    const agentPath = await echoAgent(t);
    let done!: (v: { requested: boolean; path: string; hashes: string[] }) => void;
    const result = new Promise<{ requested: boolean; path: string; hashes: string[] }>((r) => (done = r));
    const sent = randomBytes(SIZE);
    const { client } = await setup(
      t,
      {
        handler: async (s: Session) => {
          const agent = await newAgentListener();
          const forwarding = forwardAgentConnections(agent, s);
          const conns = [createConnection(agent.path), createConnection(agent.path)];
          const echoed = await Promise.all(
            conns.map(async (c) => {
              const chunks: Buffer[] = [];
              c.on('data', (d: Buffer) => chunks.push(d));
              let total = 0;
              c.write(sent);
              await new Promise<void>((r) =>
                c.on('data', (d: Buffer) => {
                  total += d.length;
                  if (total >= SIZE) r();
                }),
              );
              c.destroy();
              return sha256(Buffer.concat(chunks));
            }),
          );
          assert.equal((statSync(join(agent.path, '..')).mode & 0o777).toString(8), '700');
          await agent.close();
          await forwarding;
          done({ requested: agentRequested(s), path: agent.path, hashes: echoed });
        },
      },
      { agent: agentPath, agentForward: true },
    );
    await exec(client, 'x');
    const r = await result;
    assert.equal(r.requested, true);
    assert.deepEqual(r.hashes, [sha256(sent), sha256(sent)]);
    assert.equal(exists(join(r.path, '..')), false, 'the private directory is removed');
  });

  it('agentForwardingCallback false refuses auth-agent-req: agentRequested is false and local connections are closed', T, async (t) => {
    let done!: (v: { requested: boolean; closed: boolean }) => void;
    const result = new Promise<{ requested: boolean; closed: boolean }>((r) => (done = r));
    const calls: string[] = [];
    const { client } = await setup(
      t,
      {
        agentForwardingCallback: (ctx) => {
          calls.push(ctx.user);
          return false;
        },
        handler: async (s) => {
          const agent = await newAgentListener();
          void forwardAgentConnections(agent, s);
          const c = createConnection(agent.path);
          c.on('error', () => undefined);
          c.resume();
          await once(c, 'close');
          await agent.close();
          done({ requested: agentRequested(s), closed: true });
        },
      },
    );
    // ssh2's exec() gives up when agent forwarding is refused, so drive the session by hand.
    const ch = await openChannel(client, 'session');
    ch.resume();
    assert.equal(await channelRequest(client, ch, 'auth-agent-req@openssh.com', true), false);
    assert.equal(await channelRequest(client, ch, 'exec', true, new Wire().str('x').buf()), true);
    assert.deepEqual(await result, { requested: false, closed: true });
    assert.deepEqual(calls, ['testuser']);
  });

  it('the agent listener closes when the session ends', T, async (t) => {
    const listening: boolean[] = [];
    let agentDir = '';
    const { client } = await setup(t, {
      handler: async (s) => {
        const agent = await newAgentListener();
        agentDir = join(agent.path, '..');
        void forwardAgentConnections(agent, s);
        listening.push(agent.server.listening);
      },
    });
    await exec(client, 'x');
    await waitFor(() => agentDir !== '' && !exists(agentDir), 5000, 'the agent dir to go');
    assert.deepEqual(listening, [true]);
  });
});

describe('forwarding options and login restrictions', () => {
  it('the new callbacks are validated like every option', () => {
    for (const name of ['localUnixForwardingCallback', 'reverseUnixForwardingCallback', 'agentForwardingCallback']) {
      assert.throws(() => new Server({ [name]: 'yes' } as ServerOptions), (err: InvalidOptionError) => err.option === name);
      assert.doesNotThrow(() => new Server({ [name]: () => true } as ServerOptions));
    }
  });

  it('a restricted login without permit-port-forwarding / permit-agent-forwarding is refused even when the callbacks allow', T, async (t) => {
    const tg = await target(t, 10);
    let agent: boolean | undefined;
    const { client } = await setup(
      t,
      forwardingOptions({
        passwordHandler: (ctx) => {
          ctx.permissions.extensions[PERMISSION_KEYS.restricted] = '';
          return true;
        },
        localPortForwardingCallback: () => true,
        localUnixForwardingCallback: () => true,
        handler: async (s) => {
          agent = agentRequested(s);
          s.write('ok\n');
        },
      }),
      { password: 'x', ...OPENSSH_PEER },
    );
    const tcp = await failure(
      new Promise((resolve, reject) => client.forwardOut('127.0.0.1', 1, '127.0.0.1', tg.port, (err, ch) => (err ? reject(err) : resolve(ch)))),
    );
    assert.equal(tcp.reason, ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED);
    const unix = await failure(
      new Promise((resolve, reject) => client.openssh_forwardOutStreamLocal(join(tmp, 'x.sock'), (err, ch) => (err ? reject(err) : resolve(ch)))),
    );
    assert.equal(unix.reason, ChannelRejectReason.ADMINISTRATIVELY_PROHIBITED);
    const ch = await openChannel(client, 'session');
    ch.resume();
    assert.equal(await channelRequest(client, ch, 'auth-agent-req@openssh.com', true), false);
    assert.equal(await channelRequest(client, ch, 'exec', true, new Wire().str('x').buf()), true);
    await waitFor(() => agent !== undefined, 5000, 'the handler');
    assert.equal(agent, false);
    assert.equal(tg.accepted, 0);
  });
});
