/**
 * Test harness: a real server on 127.0.0.1 with an ephemeral port, an ssh2 client, and the
 * real OpenSSH client. Importing this module also makes the test file fail on any
 * unhandledRejection or uncaughtException.
 */
import { after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import ssh2 from 'ssh2';
import { Server, type ServerOptions } from '../../src/index.js';

const stray: unknown[] = [];
process.on('unhandledRejection', (err) => stray.push(err));
process.on('uncaughtException', (err) => stray.push(err));
after(() => {
  assert.deepEqual(stray, [], 'no unhandledRejection or uncaughtException may happen');
});

export interface TestServer {
  server: Server;
  port: number;
  /** Errors the server reported on its 'error' event. */
  errors: Error[];
  close(): Promise<void>;
}

/** Starts a server on 127.0.0.1:0 and records its 'error' events. */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const server = new Server(options);
  const errors: Error[] = [];
  server.on('error', (err) => errors.push(err));
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port, errors, close: () => server.close() };
}

/** Connects an ssh2 client (user "testuser", no auth unless given). */
export async function connect(port: number, config: ssh2.ConnectConfig = {}): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  const ready = once(client, 'ready');
  client.connect({ host: '127.0.0.1', port, username: 'testuser', readyTimeout: 10_000, ...config });
  await Promise.race([
    ready,
    once(client, 'error').then(([err]) => {
      throw err;
    }),
  ]);
  return client;
}

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
  signal: string | undefined;
}

/** Collects a client channel's output until it closes. */
export function collect(ch: ssh2.ClientChannel): Promise<ExecResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let code: number | null = null;
    let signal: string | undefined;
    ch.on('data', (d: Buffer) => out.push(d));
    ch.stderr.on('data', (d: Buffer) => err.push(d));
    ch.on('exit', (c: number | null, s?: string) => {
      code = c;
      signal = s;
    });
    // ssh2's client also passes the exit status to 'close': use it when 'exit' fired before this
    // listener existed (a fast server sends success, data, exit-status and close in one read).
    ch.on('close', (c?: number | null, s?: string) => {
      if (code === null && typeof c === 'number') code = c;
      if (signal === undefined && typeof s === 'string') signal = s;
      resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err), code, signal });
    });
  });
}

/** Runs `command` with the ssh2 client and collects its output. */
export async function exec(
  client: ssh2.Client,
  command: string,
  opts: { stdin?: Buffer | string; pty?: ssh2.PseudoTtyOptions | boolean; env?: Record<string, string> } = {},
): Promise<ExecResult> {
  const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) => {
    const execOpts: ssh2.ExecOptions = {};
    if (opts.pty) execOpts.pty = opts.pty;
    if (opts.env) execOpts.env = opts.env;
    client.exec(command, execOpts, (err, channel) => (err ? reject(err) : resolve(channel)));
  });
  const done = collect(ch);
  if (opts.stdin !== undefined) ch.end(opts.stdin);
  return done;
}

export const SSH_ARGS = [
  '-F',
  '/dev/null',
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'BatchMode=yes',
  '-o',
  'LogLevel=ERROR',
  '-o',
  'ConnectTimeout=10',
];

export interface ProcResult {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
}

/** Runs a program, feeding `input`, with a hard time limit. */
export function run(
  cmd: string,
  args: string[],
  opts: { input?: Buffer | string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(err), code });
    });
    child.stdin.on('error', () => undefined);
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** Runs the real OpenSSH client against 127.0.0.1:port. */
export function ssh(
  port: number,
  args: string[],
  opts: { input?: Buffer | string; timeoutMs?: number; user?: string } = {},
): Promise<ProcResult> {
  return run('ssh', [...SSH_ARGS, '-p', String(port), `${opts.user ?? 'testuser'}@127.0.0.1`, ...args], opts);
}

/** Resolves after `ms`. */
export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Servers and clients a test file closes after each test, also after a test that timed out:
 * `start` starts a server it tracks; add clients to `clients` (removed on their own close).
 */
export function closedAfterEach(): { start(options: ServerOptions): Promise<TestServer>; clients: Set<ssh2.Client> } {
  const clients = new Set<ssh2.Client>();
  const servers = new Set<TestServer>();
  afterEach(async () => {
    for (const c of clients) c.destroy();
    clients.clear();
    await Promise.all([...servers].map((ts) => ts.close()));
    servers.clear();
  });
  return {
    clients,
    async start(options) {
      const ts = await startServer(options);
      servers.add(ts);
      return ts;
    },
  };
}

/** Rejects if `p` has not settled within `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `predicate()` is true, polling, or fails after `ms`. */
export async function waitFor(predicate: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/**
 * Starts `examples/<file>` with ADDR=127.0.0.1:0 and resolves with the port it prints in
 * "listening on HOST:PORT". The process is killed when the test ends.
 */
export async function startExample(t: { after(fn: () => unknown): void }, file: string, env: NodeJS.ProcessEnv = {}): Promise<{ port: number; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', `examples/${file}`], {
    env: { ...process.env, ADDR: '127.0.0.1:0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    child.kill('SIGKILL');
  });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not start: ${out}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on [^\s:]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`${file} exited with ${code}: ${out}`)));
  });
  return { port, output: () => out };
}
