/** The in-process ssh2 client side of the benchmark. Every wait is bounded. */
import { connect as netConnect } from 'node:net';
import ssh2 from 'ssh2';
import { nowMs, withTimeout } from './util.js';

export interface Endpoint {
  port: number;
  user: string;
  /** For sshd (public-key auth); the Node servers accept 'none'. */
  privateKey?: string;
}

const live = new Set<ssh2.Client>();

/** Ends every client still open (cleanup). */
export function destroyAllClients(): void {
  for (const c of live) c.destroy();
  live.clear();
}

/** Connects over a socket with TCP_NODELAY set (ssh2's client does not set it). */
export function connect(ep: Endpoint, ms = 15_000): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  live.add(client);
  client.once('close', () => live.delete(client));
  const sock = netConnect(ep.port, '127.0.0.1');
  sock.setNoDelay(true);
  const ready = new Promise<ssh2.Client>((resolve, reject) => {
    client.once('ready', () => {
      client.off('error', reject);
      client.on('error', () => undefined);
      resolve(client);
    });
    client.once('error', reject);
  });
  client.connect({
    sock,
    username: ep.user,
    ...(ep.privateKey ? { privateKey: ep.privateKey } : {}),
    readyTimeout: ms,
    keepaliveInterval: 0,
  });
  return withTimeout(ready, ms, 'ssh2 connect', () => client.destroy()).catch((err: unknown) => {
    client.destroy();
    sock.destroy();
    throw err;
  });
}

/** Ends a client and waits (bounded) until its socket closed. */
export async function close(client: ssh2.Client, ms = 5_000): Promise<void> {
  if (!live.has(client)) return;
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  client.end();
  await withTimeout(closed, ms, 'ssh2 close', () => client.destroy()).catch(() => client.destroy());
}

/**
 * Opens an exec channel. `setup` runs synchronously in ssh2's callback: ssh2 may parse the
 * reply, the output, exit-status and close from one TCP read, so listeners attached after an
 * `await` could miss events.
 */
export function openExec(
  client: ssh2.Client,
  command: string,
  opts: ssh2.ExecOptions = {},
  ms = 15_000,
  setup?: (ch: ssh2.ClientChannel) => void,
): Promise<ssh2.ClientChannel> {
  const opened = new Promise<ssh2.ClientChannel>((resolve, reject) => {
    client.exec(command, opts, (err, ch) => {
      if (err) return reject(err);
      setup?.(ch);
      resolve(ch);
    });
  });
  return withTimeout(opened, ms, `exec ${command}`);
}

export interface ExecResult {
  code: number | null;
  /** stdout, kept only up to `keep` bytes. */
  stdout: Buffer;
  /** stdout bytes received. */
  bytes: number;
  stderr: string;
  /** From the exec call until the channel closed. */
  ms: number;
}

/** Runs one command: sends `stdin` (then EOF), counts stdout, waits for close. */
export async function exec(
  client: ssh2.Client,
  command: string,
  opts: { pty?: boolean; stdin?: Buffer; keep?: number; ms?: number } = {},
): Promise<ExecResult> {
  const ms = opts.ms ?? 30_000;
  const keep = opts.keep ?? 1 << 20;
  const t0 = nowMs();
  let finished!: Promise<ExecResult>;
  const ch = await openExec(client, command, opts.pty ? { pty: true } : {}, ms, (ch) => {
    finished = new Promise<ExecResult>((resolve) => {
      const out: Buffer[] = [];
      let kept = 0;
      let bytes = 0;
      let stderr = '';
      let code: number | null = null;
      ch.on('data', (d: Buffer) => {
        bytes += d.length;
        if (kept < keep) {
          out.push(d);
          kept += d.length;
        }
      });
      ch.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 4096) stderr += d.toString();
      });
      ch.on('exit', (c: number | null) => (code = c));
      ch.once('close', () => resolve({ code, stdout: Buffer.concat(out), bytes, stderr, ms: nowMs() - t0 }));
    });
  });
  if (opts.stdin) ch.end(opts.stdin);
  else ch.end();
  return withTimeout(finished, ms, `exec ${command}`, () => ch.destroy());
}

/** One connect + exec `true` + close; returns the time from connect to the channel's close. */
export async function connectExecTrue(ep: Endpoint, ms = 15_000): Promise<number> {
  const t0 = nowMs();
  const client = await connect(ep, ms);
  let elapsed: number;
  try {
    const r = await exec(client, 'true', { ms });
    elapsed = nowMs() - t0;
    if (r.code !== 0) throw new Error(`"true" exited ${r.code}: ${r.stderr}`);
  } finally {
    await close(client);
  }
  return elapsed;
}

/** An `echo` session used for 1-byte round trips. */
export class EchoSession {
  private received = 0;
  private waiter: (() => void) | undefined;
  private want = 0;
  private readonly byte = Buffer.from('x');

  private constructor(
    readonly client: ssh2.Client,
    private readonly ch: ssh2.ClientChannel,
  ) {
    ch.on('data', (d: Buffer) => {
      this.received += d.length;
      if (this.waiter && this.received >= this.want) {
        const w = this.waiter;
        this.waiter = undefined;
        w();
      }
    });
    ch.stderr.resume();
  }

  static async open(ep: Endpoint): Promise<EchoSession> {
    const client = await connect(ep);
    try {
      return new EchoSession(client, await openExec(client, 'echo'));
    } catch (err) {
      await close(client);
      throw err;
    }
  }

  /** One byte out, one byte back; returns the round trip in ms. */
  async roundTrip(ms = 5_000): Promise<number> {
    this.want = this.received + 1;
    const back = new Promise<void>((resolve) => (this.waiter = resolve));
    const t0 = nowMs();
    this.ch.write(this.byte);
    await withTimeout(back, ms, 'echo round trip');
    return nowMs() - t0;
  }

  async close(): Promise<void> {
    this.ch.end();
    await close(this.client);
  }
}
