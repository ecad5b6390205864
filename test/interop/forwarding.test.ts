/**
 * Forwarding with the real OpenSSH client: `ssh -L` to TCP and to a Unix socket, `ssh -R 0:…`
 * (two at once, ports read from "Allocated port N"), `ssh -R` from a Unix socket, `ssh -A`
 * with a real ssh-agent, denials, cleanup after the client leaves, and the two examples. Each
 * forward moves 4 MiB each way through a half-closed exchange and checks both checksums.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SSH_ARGS, run, startExample, startServer, waitFor, type TestServer } from '../helpers/harness.js';
import { exchange, exists, forwardingOptions, MiB, portFree, sha256, target } from '../helpers/forwarding.js';
import { agentRequested, forwardAgentConnections, newAgentListener, type ServerOptions } from '../../src/index.js';

const SIZE = 4 * MiB;
const T = { timeout: 20_000 };

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'glidessh-fwd-interop-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const loopback = (host: string): boolean => ['127.0.0.1', '::1', 'localhost'].includes(host);

/** Every forwarding handler, allowed to loopback and to Unix sockets under the test's directory. */
function options(extra: ServerOptions = {}): ServerOptions {
  return forwardingOptions({
    localPortForwardingCallback: (_ctx, host) => loopback(host),
    reversePortForwardingCallback: (_ctx, host) => loopback(host),
    localUnixForwardingCallback: (_ctx, path) => path.startsWith(tmp),
    reverseUnixForwardingCallback: (_ctx, path) => path.startsWith(tmp),
    ...extra,
  });
}

async function server(t: TestContext, extra: ServerOptions = {}): Promise<TestServer> {
  const srv = await startServer(options(extra));
  t.after(() => srv.close());
  return srv;
}

/** A port nobody listens on right now (for ssh's -L side). */
async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** ssh options with another LogLevel, then port, extra options, target and command. */
function sshArgv(port: number, extra: string[], command: string[], logLevel = 'DEBUG1'): string[] {
  const base = SSH_ARGS.map((a) => (a.startsWith('LogLevel=') ? `LogLevel=${logLevel}` : a));
  return [...base, '-p', String(port), ...extra, 'testuser@127.0.0.1', ...command];
}

interface SshProcess {
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  /** Waits until stderr matches `re`; fails early if ssh exits. */
  waitFor(re: RegExp, what: string): Promise<RegExpExecArray>;
  /** Ends ssh (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Runs `ssh -N …` (or with a command) in the background; it is killed after the test. */
function startSsh(t: TestContext, args: string[], env: NodeJS.ProcessEnv = process.env): SshProcess {
  const child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = once(child, 'exit');
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    child,
    stderr: () => err,
    stdout: () => out,
    async waitFor(re, what) {
      await waitFor(() => re.test(err) || child.exitCode !== null, 10_000, what);
      const m = re.exec(err);
      if (!m) throw new Error(`ssh exited (${child.exitCode}) before ${what}:\n${err}`);
      return m;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

const forwardArgs = ['-N', '-o', 'ExitOnForwardFailure=yes'];

describe('OpenSSH ssh -L / -R', () => {
  it('ssh -L PORT:127.0.0.1:PORT moves 4 MiB each way (half-close) with intact checksums', T, async (t) => {
    const tg = await target(t, SIZE);
    const srv = await server(t);
    const lport = await freePort();
    const ssh = startSsh(t, sshArgv(srv.port, [...forwardArgs, '-L', `${lport}:127.0.0.1:${tg.port}`], []));
    await ssh.waitFor(new RegExp(`Local forwarding listening on 127\\.0\\.0\\.1 port ${lport}`), 'the -L listener');
    const sent = randomBytes(SIZE);
    const r = await exchange(createConnection({ port: lport, host: '127.0.0.1', allowHalfOpen: true }), sent);
    assert.deepEqual(r, { hash: sha256(tg.answer), bytes: SIZE });
    assert.deepEqual(tg.records, [{ received: sha256(sent), bytes: SIZE }]);
    await ssh.stop();
    assert.deepEqual(srv.errors, []);
  });

  it('ssh -L PORT:/path.sock reaches a Unix socket on the server (4 MiB each way)', T, async (t) => {
    const path = join(tmp, 'target.sock');
    const tg = await target(t, SIZE, path);
    const srv = await server(t);
    const lport = await freePort();
    const ssh = startSsh(t, sshArgv(srv.port, [...forwardArgs, '-L', `${lport}:${path}`], []));
    await ssh.waitFor(new RegExp(`Local forwarding listening on 127\\.0\\.0\\.1 port ${lport}`), 'the -L listener');
    const sent = randomBytes(SIZE);
    const r = await exchange(createConnection({ port: lport, host: '127.0.0.1', allowHalfOpen: true }), sent);
    assert.deepEqual(r, { hash: sha256(tg.answer), bytes: SIZE });
    assert.deepEqual(tg.records, [{ received: sha256(sent), bytes: SIZE }]);
    await ssh.stop();
    assert.deepEqual(srv.errors, []);
  });

  it('two ssh -R 0:… forwards get their own allocated ports, each moves 4 MiB, and both ports are free after ssh exits', T, async (t) => {
    const [t1, t2] = [await target(t, SIZE), await target(t, 1000)];
    const srv = await server(t);
    const ssh = startSsh(
      t,
      sshArgv(srv.port, [...forwardArgs, '-R', `0:127.0.0.1:${t1.port}`, '-R', `0:127.0.0.1:${t2.port}`], []),
    );
    const p1 = Number((await ssh.waitFor(new RegExp(`Allocated port (\\d+) for remote forward to 127\\.0\\.0\\.1:${t1.port}`), 'port 1'))[1]);
    const p2 = Number((await ssh.waitFor(new RegExp(`Allocated port (\\d+) for remote forward to 127\\.0\\.0\\.1:${t2.port}`), 'port 2'))[1]);
    assert.notEqual(p1, p2);
    const sent = randomBytes(SIZE);
    const [r1, r2] = await Promise.all([
      exchange(createConnection({ port: p1, host: '127.0.0.1', allowHalfOpen: true }), sent),
      exchange(createConnection({ port: p2, host: '127.0.0.1', allowHalfOpen: true }), Buffer.from('small')),
    ]);
    assert.deepEqual(r1, { hash: sha256(t1.answer), bytes: SIZE });
    assert.deepEqual(r2, { hash: sha256(t2.answer), bytes: 1000 });
    assert.deepEqual(t1.records, [{ received: sha256(sent), bytes: SIZE }]);
    assert.deepEqual(t2.records, [{ received: sha256(Buffer.from('small')), bytes: 5 }]);
    await ssh.stop();
    for (const p of [p1, p2]) {
      let free = false;
      for (let i = 0; i < 100 && !(free = await portFree(p)); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(free, `port ${p} is free after ssh exited`);
    }
    assert.deepEqual(srv.errors, []);
  });

  it('ssh -R /path.sock:127.0.0.1:PORT listens on a Unix socket (4 MiB each way), removed when ssh exits', T, async (t) => {
    const tg = await target(t, SIZE);
    const srv = await server(t);
    const path = join(tmp, 'remote.sock');
    const ssh = startSsh(t, sshArgv(srv.port, [...forwardArgs, '-R', `${path}:127.0.0.1:${tg.port}`], []));
    await ssh.waitFor(/remote forward success for: listen .*remote\.sock/, 'the -R reply');
    assert.ok(exists(path));
    const sent = randomBytes(SIZE);
    const r = await exchange(createConnection({ path, allowHalfOpen: true }), sent);
    assert.deepEqual(r, { hash: sha256(tg.answer), bytes: SIZE });
    assert.deepEqual(tg.records, [{ received: sha256(sent), bytes: SIZE }]);
    await ssh.stop();
    await waitFor(() => !exists(path), 5000, 'the socket file to be removed');
    assert.deepEqual(srv.errors, []);
  });

  it('denied forwards (-L and -R off loopback, -L to another socket) fail with the reason while the session works', T, async (t) => {
    const srv = await server(t, {
      handler: async (s) => {
        s.write('ready\n');
        for await (const chunk of s) void chunk; // until the client's EOF
        s.write('still-alive\n');
      },
    });
    const lport = await freePort();
    const uport = await freePort();
    const ssh = startSsh(
      t,
      sshArgv(
        srv.port,
        [
          '-o', 'ExitOnForwardFailure=no',
          '-L', `${lport}:192.0.2.1:80`,
          '-L', `${uport}:/run/elsewhere.sock`,
          '-R', '0.0.0.0:0:127.0.0.1:9',
        ],
        ['x'],
        'INFO',
      ),
    );
    await waitFor(() => ssh.stdout().includes('ready'), 10_000, 'ready');
    for (const p of [lport, uport]) {
      const sock = createConnection(p, '127.0.0.1');
      sock.on('error', () => undefined);
      sock.resume();
      await once(sock, 'close');
    }
    await waitFor(() => (ssh.stderr().match(/open failed/g) ?? []).length >= 2, 5000, 'two open failures');
    await ssh.waitFor(/remote port forwarding failed/, 'the -R failure');
    ssh.child.stdin!.end();
    const [code] = await once(ssh.child, 'exit');
    assert.equal(code, 0, ssh.stderr());
    assert.equal(ssh.stdout(), 'ready\nstill-alive\n');
    assert.equal((ssh.stderr().match(/administratively prohibited: port forwarding is disabled/g) ?? []).length, 2, ssh.stderr());
    assert.deepEqual(srv.errors, []);
  });
});

describe('OpenSSH ssh -A', () => {
  it('the handler runs ssh-add -l through the forwarded agent and prints the key fingerprint', T, async (t) => {
    const agentSock = join(tmp, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
    t.after(() => agent.kill('SIGKILL'));
    await waitFor(() => exists(agentSock), 5000, 'ssh-agent');
    const key = join(tmp, 'id_agent');
    assert.equal((await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'agent-key', '-f', key])).code, 0);
    const env = { ...process.env, SSH_AUTH_SOCK: agentSock };
    assert.equal((await run('ssh-add', [key], { env })).code, 0);
    const fingerprint = (await run('ssh-keygen', ['-lf', `${key}.pub`])).stdout.toString().split(' ')[1]!;
    assert.match(fingerprint, /^SHA256:/);

    const dirs: string[] = [];
    const srv = await server(t, {
      handler: async (s) => {
        if (!agentRequested(s)) {
          s.stderr.write('no agent forwarded\n');
          await s.exit(2);
          return;
        }
        const listener = await newAgentListener();
        dirs.push(join(listener.path, '..'));
        void forwardAgentConnections(listener, s);
        const r = await run('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: listener.path } });
        s.write(r.stdout);
        await listener.close();
        await s.exit(r.code ?? 1);
      },
    });
    const withAgent = await run('ssh', sshArgv(srv.port, ['-A'], ['list'], 'ERROR'), { env });
    assert.equal(withAgent.code, 0, withAgent.stderr.toString());
    assert.match(withAgent.stdout.toString(), new RegExp(`^256 ${fingerprint.replace(/[+/]/g, '\\$&')} agent-key \\(ED25519\\)\\n$`));
    assert.equal(exists(dirs[0]!), false, 'the agent socket directory is gone');

    const without = await run('ssh', sshArgv(srv.port, ['-a'], ['list'], 'ERROR'), { env });
    assert.equal(without.code, 2);
    assert.equal(without.stderr.toString(), 'no agent forwarded\n');
    assert.deepEqual(srv.errors, []);
  });
});

describe('examples', () => {
  it('examples/forward allows -L and -R to loopback only', T, async (t) => {
    const port = (await startExample(t, 'forward.ts')).port;
    const tg = await target(t, 1000);
    const lport = await freePort();
    const ssh = startSsh(
      t,
      sshArgv(port, ['-N', '-o', 'ExitOnForwardFailure=no', '-L', `${lport}:127.0.0.1:${tg.port}`, '-R', `0:127.0.0.1:${tg.port}`, '-R', `0.0.0.0:0:127.0.0.1:${tg.port}`], []),
    );
    const rport = Number((await ssh.waitFor(/Allocated port (\d+) for remote forward to 127\.0\.0\.1/, 'the -R port'))[1]);
    await ssh.waitFor(/remote port forwarding failed for listen port 0/, 'the 0.0.0.0 -R refused');
    await ssh.waitFor(new RegExp(`Local forwarding listening on 127\\.0\\.0\\.1 port ${lport}`), 'the -L listener');
    for (const p of [lport, rport]) {
      const r = await exchange(createConnection({ port: p, host: '127.0.0.1', allowHalfOpen: true }), Buffer.from('hi'));
      assert.deepEqual(r, { hash: sha256(tg.answer), bytes: 1000 });
    }
    assert.equal(tg.records.length, 2);
    await ssh.stop();
  });

  it('examples/agent lists the forwarded agent keys, and says how when there is none', T, async (t) => {
    const port = (await startExample(t, 'agent.ts')).port;
    const agentSock = join(tmp, 'example-agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
    t.after(() => agent.kill('SIGKILL'));
    await waitFor(() => exists(agentSock), 5000, 'ssh-agent');
    const key = join(tmp, 'id_example');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'example-key', '-f', key]);
    const env = { ...process.env, SSH_AUTH_SOCK: agentSock };
    await run('ssh-add', [key], { env });
    const r = await run('ssh', sshArgv(port, ['-A'], [], 'ERROR'), { env });
    assert.equal(r.code, 0, r.stderr.toString());
    const fingerprint = (await run('ssh-keygen', ['-lf', `${key}.pub`])).stdout.toString().split(' ')[1]!;
    assert.ok(r.stdout.toString().includes(`${fingerprint} example-key (ED25519)`), r.stdout.toString());
    const none = await run('ssh', sshArgv(port, ['-a'], [], 'ERROR'), { env });
    assert.equal(none.code, 1);
    assert.match(none.stderr.toString(), /ssh -A/);
  });
});
