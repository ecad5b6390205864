/**
 * The ssh2 client of the pty / non-pty streaming comparison, in a process of its own: after
 * the thousands of connections of the other phases the benchmark's own process streams up to
 * 2× slower (its V8 heap has grown), which would hide the servers' cost per byte.
 *
 *   node --import tsx bench/stream-client.ts '<json Job>'
 *
 * prints one JSON line (`Result`) and exits. Ends when stdin closes (the benchmark is gone).
 */
import { readFileSync } from 'node:fs';
import * as client from './lib/client.js';
import { Deadline, rotate } from './lib/util.js';

export interface StreamJob {
  targets: Array<{ key: string; port: number; user: string; privateKeyFile?: string }>;
  bytes: number;
  warmBytes: number;
  reps: number;
  /** Per `source` run. */
  runMs: number;
  /** For the whole job. */
  budgetMs: number;
}

/**
 * Per server: MB/s of each run, in pairs (`plain[i]` and `pty[i]` ran back to back), and for
 * the Node servers their CPU ms per MiB sent (from the `stats` command around each run).
 */
export type StreamResult = Record<string, { plain: number[]; pty: number[]; plainCpu: number[]; ptyCpu: number[]; error?: string }>;

/** A Node server's CPU ms so far (`stats nogc`); null for sshd, which has no such command. */
async function serverCpu(c: Awaited<ReturnType<typeof client.connect>>, key: string): Promise<number | null> {
  if (key === 'sshd') return null;
  const r = await client.exec(c, 'stats nogc', { ms: 15_000 });
  const s = JSON.parse(r.stdout.toString()) as { cpuUserMs: number; cpuSystemMs: number };
  return s.cpuUserMs + s.cpuSystemMs;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as StreamJob;
  const deadline = new Deadline(job.budgetMs);
  const out: StreamResult = {};
  const conns = new Map<string, Awaited<ReturnType<typeof client.connect>>>();
  const fail = (key: string, err: unknown): void => {
    out[key]!.error = (err as Error).message.split('\n')[0];
    const c = conns.get(key);
    conns.delete(key);
    if (c) void client.close(c);
  };
  for (const t of job.targets) {
    out[t.key] = { plain: [], pty: [], plainCpu: [], ptyCpu: [] };
    try {
      const privateKey = t.privateKeyFile ? readFileSync(t.privateKeyFile, 'utf8') : undefined;
      const c = await client.connect({ port: t.port, user: t.user, ...(privateKey ? { privateKey } : {}) });
      conns.set(t.key, c);
      for (const pty of [false, true]) await client.exec(c, `source ${job.warmBytes}`, { pty, keep: 0, ms: job.runMs });
    } catch (err) {
      fail(t.key, err);
    }
  }
  for (let rep = 0; rep < job.reps && !deadline.passed; rep++) {
    for (const t of rotate(job.targets, rep)) {
      const c = conns.get(t.key);
      if (!c) continue;
      try {
        for (const pty of rep % 2 === 0 ? [false, true] : [true, false]) {
          const cpu0 = await serverCpu(c, t.key);
          const r = await client.exec(c, `source ${job.bytes}`, { pty, keep: 0, ms: job.runMs });
          if (r.code !== 0 || r.bytes < job.bytes) throw new Error(`source (pty=${pty}) gave ${r.bytes} bytes, exit ${r.code}`);
          const cpu1 = await serverCpu(c, t.key);
          out[t.key]![pty ? 'pty' : 'plain'].push(job.bytes / 1e6 / (r.ms / 1000));
          if (cpu0 !== null && cpu1 !== null) out[t.key]![pty ? 'ptyCpu' : 'plainCpu'].push((cpu1 - cpu0) / (job.bytes / 2 ** 20));
        }
      } catch (err) {
        fail(t.key, err);
      }
    }
  }
  for (const c of conns.values()) await client.close(c);
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

process.stdin.on('end', () => process.exit(1));
process.stdin.resume();
main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`stream-client: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
