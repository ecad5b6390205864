/**
 * glidessh benchmark: glidessh against a raw-ssh2 baseline (and OpenSSH's sshd when
 * installed), all on loopback, in one run. See bench/README.md.
 *
 *   npm run bench                 full run (about 5 minutes on 2 cores with sshd)
 *   npm run bench -- --quick      under a minute
 *   npm run bench -- --smoke      a few seconds, tiny sizes (used by test/bench/smoke.test.ts)
 *   … --json <path>               where to write the JSON (default bench/results/latest*.json)
 *   … --only <phase,…>            sanity,memory,connect,echo,pty,throughput (default: all)
 *   … --no-sshd                   skip sshd even when installed
 *   … --cpu-prof                  run the Node servers with --cpu-prof (bench/results/profiles/<phase>/<server>/)
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import * as client from './lib/client.js';
import type { Endpoint } from './lib/client.js';
import {
  CIPHERS,
  runSsh,
  sshArgs,
  startMaster,
  sshClientVersion,
  sshdUnavailable,
  startSshd,
  liveTreeCpuMs,
  treeCpuMs,
  treeMemory,
  type Cipher,
  type Master,
  type Sshd,
} from './lib/openssh.js';
import { cleanup, installSignalHandlers, onCleanup, removeOnCleanup, runCommand, spawnTracked, stopping, waitForLine } from './lib/procs.js';
import { Deadline, fmt, median, nowMs, percentile, rotate, sleep } from './lib/util.js';
import type { ProcessStats } from './servers/common.js';
import type { StreamJob, StreamResult } from './stream-client.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Configuration

type Mode = 'full' | 'quick' | 'smoke';
const PHASES = ['sanity', 'memory', 'connect', 'echo', 'pty', 'throughput'] as const;
type Phase = (typeof PHASES)[number];

interface Config {
  /** Bytes per OpenSSH upload/download run. */
  transferBytes: number;
  /** Runs per server × cipher × direction (median reported). */
  transferReps: number;
  /** `ssh … true` runs per server × cipher, whose median is subtracted from transfer times. */
  baseReps: number;
  /** ssh2 connect+exec runs per server (also the CPU-per-connection sample). */
  connectN: number;
  /** 1-byte echo round trips per server. */
  echoN: number;
  /** Idle sessions = memConns × memPerConn. */
  memConns: number;
  memPerConn: number;
  memReps: number;
  /** Bytes per ssh2 `source` run for the pty / non-pty comparison. */
  ptyBytes: number;
  ptyReps: number;
  /** Wall-clock budget of the whole run; loops stop early when it is spent. */
  budgetMs: number;
}

const CONFIGS: Record<Mode, Config> = {
  full: {
    transferBytes: 256 * MiB,
    transferReps: 15,
    baseReps: 5,
    connectN: 2000,
    echoN: 20_000,
    memConns: 50,
    memPerConn: 10,
    memReps: 5,
    ptyBytes: 256 * MiB,
    ptyReps: 7,
    budgetMs: 25 * 60_000,
  },
  quick: {
    transferBytes: 256 * MiB,
    transferReps: 5,
    baseReps: 3,
    connectN: 600,
    echoN: 5000,
    memConns: 50,
    memPerConn: 10,
    memReps: 3,
    ptyBytes: 128 * MiB,
    ptyReps: 5,
    budgetMs: 3 * 60_000,
  },
  smoke: {
    transferBytes: 8 * MiB,
    transferReps: 1,
    baseReps: 1,
    connectN: 5,
    echoN: 5,
    memConns: 5,
    memPerConn: 10,
    memReps: 1,
    ptyBytes: 2 * MiB,
    ptyReps: 1,
    budgetMs: 45_000,
  },
};

interface Args {
  mode: Mode;
  json: string;
  phases: Set<Phase>;
  sshd: boolean;
  cpuProf: boolean;
}

function parseArgs(argv: string[]): Args {
  let mode: Mode = 'full';
  let json: string | undefined;
  let phases = new Set<Phase>(PHASES);
  let sshd = true;
  let cpuProf = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') mode = 'quick';
    else if (a === '--smoke') mode = 'smoke';
    else if (a === '--full') mode = 'full';
    else if (a === '--json') json = argv[++i];
    else if (a === '--no-sshd') sshd = false;
    else if (a === '--cpu-prof') cpuProf = true;
    else if (a === '--only') {
      const list = (argv[++i] ?? '').split(',').filter(Boolean);
      for (const p of list) if (!(PHASES as readonly string[]).includes(p)) throw new Error(`--only: unknown phase "${p}"`);
      phases = new Set(list as Phase[]);
    } else if (a === '--help' || a === '-h') {
      process.stdout.write(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]!.replace(/^\/\*\*?/, ''));
      process.exit(0);
    } else throw new Error(`unknown argument "${a}" (try --help)`);
  }
  if (!json) json = join(ROOT, 'bench', 'results', mode === 'full' ? 'latest.json' : `latest-${mode}.json`);
  return { mode, json: resolve(json), phases, sshd, cpuProf };
}

// ---------------------------------------------------------------------------------------------
// Servers under test

type Key = 'raw' | 'glidessh' | 'sshd';
const LABELS: Record<Key, string> = { raw: 'raw ssh2', glidessh: 'glidessh', sshd: 'OpenSSH sshd' };

interface Target {
  key: Key;
  ep: Endpoint;
  /** ssh client args without the command. */
  ssh: Record<Cipher, string[]>;
  /** Node servers: a control connection for `stats`. */
  control?: ssh2.Client;
  /** sshd: the listener's pid for /proc accounting. */
  sshdPid?: number;
  /** sshd: the client's private key file for `ssh -i`. */
  identity?: string;
  /** Node servers: stops the process (each phase gets fresh ones). */
  stop?: () => Promise<void>;
}

/** Where `tsconfig.bench.json` puts the compiled servers (and the glidessh sources they import). */
const BUILD = join(ROOT, 'bench', '.build');

/**
 * Compiles both servers and glidessh's sources to JavaScript. The servers run as plain
 * compiled JS, as a deployed application does, not under the tsx loader: tsx adds about
 * 1.7 MB of old-generation heap to a process, which moved glidessh's server (not the smaller
 * raw one) past V8's 8 MB incremental-marking threshold and cost it half its throughput in
 * back-to-back marking cycles — a property of the process's heap size, not of the wrapper
 * (bench/README.md, "Heap size and throughput").
 */
async function buildServers(): Promise<void> {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = await runCommand(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.bench.json')], 120_000);
  if (r.code !== 0) throw new Error(`compiling the benchmark servers failed: ${(r.stdout + r.stderr).trim().split('\n').slice(0, 5).join('\n')}`);
}

async function startNodeServer(key: 'raw' | 'glidessh', hostKeyFile: string, args: Args, budgetMs: number, phase: Phase): Promise<Target> {
  const file = join(BUILD, 'bench', 'servers', key === 'raw' ? 'raw-ssh2.js' : 'glidessh.js');
  const flags = ['--expose-gc'];
  if (args.cpuProf) {
    // One file per thread; the main thread's is *.0.001.*.
    const dir = join(ROOT, 'bench', 'results', 'profiles', phase, key);
    mkdirSync(dir, { recursive: true });
    flags.push('--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', dir);
  }
  const child = spawnTracked(process.execPath, [...flags, file, '--host-key', hostKeyFile, '--max-ms', String(budgetMs + 120_000)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    // A server with --cpu-prof writes its profile on the way out.
    await Promise.race([exited, sleep(args.cpuProf ? 20_000 : 5_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    const m = await waitForLine(child, /^PORT (\d+)$/, 30_000, `${key} server`);
    const port = Number(m[1]);
    const user = 'bench';
    const ep: Endpoint = { port, user };
    const control = await client.connect(ep);
    return {
      key,
      ep,
      control,
      stop: async () => {
        await client.close(control);
        await stop();
      },
      ssh: Object.fromEntries(CIPHERS.map((c) => [c, sshArgs(port, user, c)])) as Record<Cipher, string[]>,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function freePort(): Promise<number> {
  // A high port from the ephemeral range that is free right now.
  const srv = createServer();
  await new Promise<void>((res, rej) => srv.once('error', rej).listen(0, '127.0.0.1', () => res()));
  const addr = srv.address();
  await new Promise<void>((res) => srv.close(() => res()));
  if (!addr || typeof addr !== 'object') throw new Error('no free port');
  return addr.port;
}

/** Node servers: the `stats` command over the control connection. */
async function nodeStats(t: Target, gc: boolean): Promise<ProcessStats> {
  const r = await client.exec(t.control!, gc ? 'stats' : 'stats nogc', { ms: 15_000 });
  if (r.code !== 0) throw new Error(`${t.key}: stats exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()) as ProcessStats;
}

/** Server CPU so far, in ms (user+system; for Node servers also split). */
async function cpuMs(t: Target): Promise<{ total: number; user?: number; system?: number } | null> {
  if (t.key === 'sshd') {
    const total = t.sshdPid ? treeCpuMs(t.sshdPid) : null;
    return total === null ? null : { total };
  }
  const s = await nodeStats(t, false);
  return { total: s.cpuUserMs + s.cpuSystemMs, user: s.cpuUserMs, system: s.cpuSystemMs };
}

// ---------------------------------------------------------------------------------------------
// Results

type Metrics = Record<string, number | null>;
const results: Record<Key, { metrics: Metrics; samples: Record<string, unknown>; notes: string[] }> = {
  raw: { metrics: {}, samples: {}, notes: [] },
  glidessh: { metrics: {}, samples: {}, notes: [] },
  sshd: { metrics: {}, samples: {}, notes: [] },
};
const notes: string[] = [];

function put(t: Target | Key, metric: string, value: number | null | undefined): void {
  const key = typeof t === 'string' ? t : t.key;
  results[key].metrics[metric] = value === undefined || value === null || !Number.isFinite(value) ? null : value;
}

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Runs `fn` for one target; a failure of sshd is recorded, a failure of the others is fatal. */
async function guarded(t: Target, what: string, fn: () => Promise<void>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (t.key !== 'sshd') throw err;
    const msg = `${what} failed: ${(err as Error).message.split('\n')[0]}`;
    results.sshd.notes.push(msg);
    log(`sshd: ${msg}`);
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Phases

async function sanity(targets: Target[]): Promise<void> {
  for (const t of targets) {
    await guarded(t, 'sanity', async () => {
      const c = await client.connect(t.ep);
      try {
        const src = await client.exec(c, 'source 1000');
        if (src.code !== 0 || src.bytes !== 1000) throw new Error(`${t.key}: source 1000 gave ${src.bytes} bytes, exit ${src.code}`);
        const pty = await client.exec(c, 'source 800', { pty: true });
        if (pty.code !== 0 || pty.bytes < 800) throw new Error(`${t.key}: pty source 800 gave ${pty.bytes} bytes, exit ${pty.code}`);
        results[t.key].samples['ptySource800Bytes'] = pty.bytes;
        const sink = await client.exec(c, 'sink', { stdin: Buffer.alloc(12345, 7) });
        if (sink.code !== 0 || sink.stdout.toString().trim() !== '12345') {
          throw new Error(`${t.key}: sink answered ${JSON.stringify(sink.stdout.toString())}, exit ${sink.code}`);
        }
        const echo = await client.exec(c, 'echo', { stdin: Buffer.from('ping') });
        if (echo.code !== 0 || echo.stdout.toString() !== 'ping') throw new Error(`${t.key}: echo answered ${JSON.stringify(echo.stdout.toString())}`);
      } finally {
        await client.close(c);
      }
      const r = await runSsh(t.ssh[CIPHERS[0]], 'true', 'ignore', 'pipe', 20_000);
      if (r.code !== 0) throw new Error(`${t.key}: ssh … true exited ${r.code}: ${r.stderr.trim()}`);
    });
  }
}

async function connectPhase(targets: Target[], cfg: Config, deadline: Deadline): Promise<void> {
  const samples = new Map<Key, number[]>(targets.map((t) => [t.key, []]));
  const failed = new Set<Key>();
  for (const t of targets) {
    const ok = await guarded(t, 'connect warm-up', async () => {
      for (let i = 0; i < Math.min(20, cfg.connectN); i++) await client.connectExecTrue(t.ep);
    });
    if (!ok) failed.add(t.key);
  }
  await sleep(200);
  const before = new Map<Key, Awaited<ReturnType<typeof cpuMs>>>();
  for (const t of targets) before.set(t.key, failed.has(t.key) ? null : await cpuMs(t));
  const block = Math.max(1, Math.ceil(cfg.connectN / 10));
  for (let round = 0; round < 1000 && !deadline.passed; round++) {
    let any = false;
    for (const t of rotate(targets, round)) {
      const list = samples.get(t.key)!;
      if (failed.has(t.key) || list.length >= cfg.connectN) continue;
      any = true;
      const ok = await guarded(t, 'connect', async () => {
        for (let j = 0; j < block && list.length < cfg.connectN && !deadline.passed; j++) list.push(await client.connectExecTrue(t.ep));
      });
      if (!ok) failed.add(t.key);
    }
    if (!any) break;
  }
  await sleep(300); // let the servers finish tearing down (and sshd reap) the last connection
  for (const t of targets) {
    const list = samples.get(t.key)!;
    put(t, 'connect_p50_ms', percentile(list, 50));
    put(t, 'connect_p90_ms', percentile(list, 90));
    results[t.key].samples['connectN'] = list.length;
    const b = before.get(t.key);
    const a = failed.has(t.key) ? null : await cpuMs(t);
    const n = list.length;
    put(t, 'cpu_per_conn_ms', a && b && n > 0 ? (a.total - b.total) / n : null);
    if (a?.user !== undefined && b?.user !== undefined && n > 0) {
      results[t.key].samples['cpuUserPerConnMs'] = (a.user - b.user) / n;
      results[t.key].samples['cpuSystemPerConnMs'] = (a.system! - b.system!) / n;
    }
  }
}

async function echoPhase(targets: Target[], cfg: Config, deadline: Deadline): Promise<void> {
  const sessions = new Map<Key, client.EchoSession>();
  const samples = new Map<Key, number[]>(targets.map((t) => [t.key, []]));
  try {
    for (const t of targets) {
      await guarded(t, 'echo', async () => {
        const s = await client.EchoSession.open(t.ep);
        sessions.set(t.key, s);
        for (let i = 0; i < Math.min(20, cfg.echoN); i++) await s.roundTrip(); // warm-up
      });
    }
    const block = Math.max(1, Math.ceil(cfg.echoN / 10));
    for (let round = 0; round < 1000 && !deadline.passed; round++) {
      let any = false;
      for (const t of rotate(targets, round)) {
        const s = sessions.get(t.key);
        const list = samples.get(t.key)!;
        if (!s || list.length >= cfg.echoN) continue;
        any = true;
        const ok = await guarded(t, 'echo', async () => {
          for (let j = 0; j < block && list.length < cfg.echoN && !deadline.passed; j++) list.push(await s.roundTrip());
        });
        if (!ok) sessions.delete(t.key);
      }
      if (!any) break;
    }
  } finally {
    for (const s of sessions.values()) await s.close();
  }
  for (const t of targets) {
    const list = samples.get(t.key)!;
    put(t, 'echo_p50_us', percentile(list, 50) * 1000);
    put(t, 'echo_p99_us', percentile(list, 99) * 1000);
    results[t.key].samples['echoN'] = list.length;
  }
}

interface MemSample {
  heapExt: number | null;
  rss: number;
}

async function memSnapshot(t: Target): Promise<MemSample | null> {
  if (t.key === 'sshd') {
    const m = t.sshdPid ? treeMemory(t.sshdPid) : null;
    return m ? { heapExt: null, rss: m.pss } : null;
  }
  const s = await nodeStats(t, true);
  return { heapExt: s.heapUsed + s.external, rss: s.rss };
}

/** Opens memConns × memPerConn `idle` sessions, measures, closes them all. */
async function memOnce(t: Target, cfg: Config, deadline: Deadline): Promise<{ heapExt: number | null; rss: number; sessions: number } | null> {
  const before = await memSnapshot(t);
  if (!before) return null;
  const clients: ssh2.Client[] = [];
  const channels: ssh2.ClientChannel[] = [];
  try {
    for (let i = 0; i < cfg.memConns && !deadline.passed; i++) {
      const c = await client.connect(t.ep);
      clients.push(c);
      const opened = await Promise.all(Array.from({ length: cfg.memPerConn }, () => client.openExec(c, 'idle')));
      for (const ch of opened) {
        ch.on('data', () => undefined);
        ch.stderr.on('data', () => undefined);
      }
      channels.push(...opened);
    }
    await sleep(500);
    const after = await memSnapshot(t);
    if (!after || channels.length === 0) return null;
    return {
      heapExt: after.heapExt !== null && before.heapExt !== null ? (after.heapExt - before.heapExt) / channels.length : null,
      rss: (after.rss - before.rss) / channels.length,
      sessions: channels.length,
    };
  } finally {
    await Promise.all(clients.map((c) => client.close(c)));
    await sleep(300);
  }
}

async function memoryPhase(targets: Target[], cfg: Config, deadline: Deadline): Promise<void> {
  const heap = new Map<Key, number[]>(targets.map((t) => [t.key, []]));
  const rss = new Map<Key, number[]>(targets.map((t) => [t.key, []]));
  const count = new Map<Key, number>();
  const failed = new Set<Key>();
  for (let rep = 0; rep < cfg.memReps && !deadline.passed; rep++) {
    for (const t of rotate(targets, rep)) {
      if (failed.has(t.key)) continue;
      const ok = await guarded(t, 'memory', async () => {
        const r = await memOnce(t, cfg, deadline);
        if (!r) return;
        if (r.heapExt !== null) heap.get(t.key)!.push(r.heapExt);
        rss.get(t.key)!.push(r.rss);
        count.set(t.key, r.sessions);
      });
      if (!ok) failed.add(t.key);
    }
  }
  for (const t of targets) {
    put(t, 'mem_heap_ext_KB', median(heap.get(t.key)!) / 1024);
    // RSS: the first repetition only; later ones reuse pages the previous one freed.
    const firstRss = rss.get(t.key)![0];
    put(t, 'mem_rss_KB', firstRss === undefined ? null : firstRss / 1024);
    results[t.key].samples['memSessions'] = count.get(t.key) ?? 0;
    results[t.key].samples['memHeapExtKB'] = heap.get(t.key)!.map((v) => v / 1024);
    results[t.key].samples['memRssKB'] = rss.get(t.key)!.map((v) => v / 1024);
  }
}

async function ptyPhase(targets: Target[], cfg: Config, deadline: Deadline): Promise<void> {
  // The client runs in a fresh process (see bench/stream-client.ts for why).
  const runMs = 60_000 + cfg.ptyBytes / 2_000; // ≥ 2 MB/s or it is a failure
  const job: StreamJob = {
    targets: targets.map((t) => ({ key: t.key, port: t.ep.port, user: t.ep.user, ...(t.identity ? { privateKeyFile: t.identity } : {}) })),
    bytes: cfg.ptyBytes,
    warmBytes: Math.min(cfg.ptyBytes, 16 * MiB),
    reps: cfg.ptyReps,
    runMs,
    budgetMs: deadline.left(1_000),
  };
  const child = spawnTracked(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'stream-client.ts'), JSON.stringify(job)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const limit = job.budgetMs + runMs + 30_000;
  const timer = setTimeout(() => child.kill('SIGKILL'), limit);
  const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
  clearTimeout(timer);
  if (code !== 0) throw new Error(`stream client exited ${code}: ${stderr.trim()}`);
  const out = JSON.parse(stdout) as StreamResult;
  for (const t of targets) {
    const r = out[t.key];
    if (r?.error) {
      if (t.key !== 'sshd') throw new Error(`${t.key}: streaming failed: ${r.error}`);
      results.sshd.notes.push(`pty failed: ${r.error}`);
    }
    const plain = r && !r.error ? r.plain : [];
    const pty = r && !r.error ? r.pty : [];
    put(t, 'stream_MBps', median(plain));
    put(t, 'pty_stream_MBps', median(pty));
    // The median of the per-repetition ratios: each pair ran back to back, so what the
    // machine was doing at the time cancels out of the ratio.
    const n = Math.min(plain.length, pty.length);
    put(t, 'pty_ratio', median(Array.from({ length: n }, (_, i) => pty[i]! / plain[i]!)));
    put(t, 'stream_cpu_ms_per_MiB', r && !r.error ? median(r.plainCpu) : null);
    put(t, 'pty_stream_cpu_ms_per_MiB', r && !r.error ? median(r.ptyCpu) : null);
    results[t.key].samples['streamMBps'] = plain;
    results[t.key].samples['ptyStreamMBps'] = pty;
    results[t.key].samples['streamCpuMsPerMiB'] = r?.plainCpu ?? [];
    results[t.key].samples['ptyStreamCpuMsPerMiB'] = r?.ptyCpu ?? [];
  }
}

const CIPHER_TAG: Record<Cipher, string> = { 'aes128-gcm@openssh.com': 'aes', 'chacha20-poly1305@openssh.com': 'chacha' };

async function throughputPhase(targets: Target[], cfg: Config, deadline: Deadline, dir: string): Promise<void> {
  const bytes = cfg.transferBytes;
  // A sparse file: reading it costs the kernel almost nothing, so ssh and the server are measured.
  const input = join(dir, 'upload.bin');
  writeFileSync(input, '');
  truncateSync(input, bytes);
  const devnull = openSync('/dev/null', 'w');
  const runMs = 60_000 + bytes / 10_000; // ≥ 10 MB/s or it is a failure
  type Series = { connect: number[]; base: number[]; upWall: number[]; downWall: number[]; upCpu: number[]; downCpu: number[] };
  const data = new Map<string, Series>();
  const series = (t: Target, c: Cipher): Series => {
    const k = `${t.key}/${c}`;
    let s = data.get(k);
    if (!s) data.set(k, (s = { connect: [], base: [], upWall: [], downWall: [], upCpu: [], downCpu: [] }));
    return s;
  };
  const failed = new Set<Key>();
  const ok = (r: { code: number | null; stderr: string }, what: string): void => {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr.trim().split('\n')[0]}`);
  };
  const masters = new Map<string, Master>();
  try {
    // Plain `ssh … true` (new connection each time): the OpenSSH client's connect+exec time.
    for (let rep = 0; rep < cfg.baseReps && !deadline.passed; rep++) {
      for (const c of CIPHERS) {
        for (const t of rotate(targets, rep)) {
          if (failed.has(t.key)) continue;
          const good = await guarded(t, 'ssh true', async () => {
            const r = await runSsh(t.ssh[c], 'true', 'ignore', 'pipe', 30_000);
            ok(r, `${t.key} ssh true`);
            series(t, c).connect.push(r.wallMs);
          });
          if (!good) failed.add(t.key);
        }
      }
    }
    // Transfers run as sessions of one master connection per server and cipher, so that the
    // handshake (and the OpenSSH client's occasional 40 ms Nagle/delayed-ACK stall in it) is
    // not part of the time; what is left of the session setup is measured with `true` below.
    for (const t of targets) {
      for (const c of CIPHERS) {
        if (failed.has(t.key)) continue;
        const good = await guarded(t, 'ssh master', async () => {
          const m = await startMaster(t.ep.port, t.ep.user, c, join(dir, `m-${t.key}-${CIPHER_TAG[c]}`), t.identity);
          masters.set(`${t.key}/${c}`, m);
        });
        if (!good) failed.add(t.key);
      }
    }
    const via = (t: Target, c: Cipher): string[] => masters.get(`${t.key}/${c}`)!.args;
    for (let rep = 0; rep < Math.max(3, cfg.baseReps) && !deadline.passed; rep++) {
      for (const c of CIPHERS) {
        for (const t of rotate(targets, rep)) {
          if (failed.has(t.key)) continue;
          const good = await guarded(t, 'ssh true (master)', async () => {
            const r = await runSsh(via(t, c), 'true', 'ignore', 'pipe', 30_000);
            ok(r, `${t.key} ssh true (master)`);
            series(t, c).base.push(r.wallMs);
          });
          if (!good) failed.add(t.key);
        }
      }
    }
    // Warm-up (not recorded): one smaller transfer each way per server and cipher.
    const warm = Math.min(bytes, 32 * MiB);
    const warmInput = join(dir, 'warm-up.bin');
    writeFileSync(warmInput, '');
    truncateSync(warmInput, warm);
    for (const c of CIPHERS) {
      for (const t of targets) {
        if (failed.has(t.key)) continue;
        const good = await guarded(t, 'warm-up', async () => {
          const inFd = openSync(warmInput, 'r');
          try {
            ok(await runSsh(via(t, c), 'sink', inFd, 'pipe', runMs), `${t.key} sink (warm-up)`);
          } finally {
            closeSync(inFd);
          }
          ok(await runSsh(via(t, c), `source ${warm}`, 'ignore', devnull, runMs), `${t.key} source (warm-up)`);
        });
        if (!good) failed.add(t.key);
      }
    }
    for (let rep = 0; rep < cfg.transferReps && !deadline.passed; rep++) {
      for (const c of CIPHERS) {
        for (const dirn of rep % 2 === 0 ? (['up', 'down'] as const) : (['down', 'up'] as const)) {
          for (const t of rotate(targets, rep)) {
            if (failed.has(t.key) || deadline.passed) continue;
            const s = series(t, c);
            const good = await guarded(t, `${dirn} ${c}`, async () => {
              // Server CPU per MiB (sshd: the listener and its live children, the master connection's among them).
              const serverCpu = async (): Promise<number | null> =>
                t.key === 'sshd' ? (t.sshdPid ? liveTreeCpuMs(t.sshdPid) : null) : ((await cpuMs(t))?.total ?? null);
              const cpu0 = await serverCpu();
              const cpuDone = async (list: number[]): Promise<void> => {
                const cpu1 = cpu0 !== null ? await serverCpu() : null;
                if (cpu0 !== null && cpu1 !== null) list.push((cpu1 - cpu0) / (bytes / MiB));
              };
              if (dirn === 'up') {
                const inFd = openSync(input, 'r');
                try {
                  const r = await runSsh(via(t, c), 'sink', inFd, 'pipe', runMs);
                  ok(r, `${t.key} sink`);
                  if (r.stdout.trim() !== String(bytes)) throw new Error(`${t.key} sink counted ${JSON.stringify(r.stdout.trim())}, sent ${bytes}`);
                  s.upWall.push(r.wallMs);
                  await cpuDone(s.upCpu);
                } finally {
                  closeSync(inFd);
                }
              } else {
                const r = await runSsh(via(t, c), `source ${bytes}`, 'ignore', devnull, runMs);
                ok(r, `${t.key} source`);
                s.downWall.push(r.wallMs);
                await cpuDone(s.downCpu);
              }
            });
            if (!good) failed.add(t.key);
          }
        }
      }
    }
  } finally {
    closeSync(devnull);
    await Promise.all([...masters.values()].map((m) => m.stop()));
  }
  for (const t of targets) {
    for (const c of CIPHERS) {
      const s = series(t, c);
      const base = median(s.base);
      const tag = CIPHER_TAG[c];
      const rates = (wall: number[], dirn: 'up' | 'down'): number[] =>
        wall.map((w) => {
          let net = w - base;
          if (!(net > 0.5 * w)) {
            // Only for tiny transfers (smoke runs), where session setup dominates.
            net = w;
            const note = `${dirn}_${tag}: session setup not subtracted (transfer too short)`;
            if (!results[t.key].notes.includes(note)) results[t.key].notes.push(note);
          }
          return bytes / 1e6 / (net / 1000);
        });
      const up = rates(s.upWall, 'up');
      const down = rates(s.downWall, 'down');
      put(t, `up_${tag}_MBps`, median(up));
      put(t, `down_${tag}_MBps`, median(down));
      put(t, `cpu_up_${tag}_ms_per_MiB`, median(s.upCpu));
      put(t, `cpu_down_${tag}_ms_per_MiB`, median(s.downCpu));
      results[t.key].samples[`ssh_${tag}`] = {
        connectMs: s.connect,
        sessionSetupMs: s.base,
        upWallMs: s.upWall,
        downWallMs: s.downWall,
        upServerCpuMsPerMiB: s.upCpu,
        downServerCpuMsPerMiB: s.downCpu,
        upMBps: up,
        downMBps: down,
      };
    }
    put(t, 'ssh_exec_ms', median(CIPHERS.flatMap((c) => series(t, c).connect)));
  }
}

// ---------------------------------------------------------------------------------------------
// Table

interface Row {
  key: string;
  label: string;
  /** How glidessh passes: its ratio to raw ssh2, or its own value. */
  target?: { on: 'ratio' | 'value'; op: '>=' | '<='; value: number };
  phase: Phase;
}

const ROWS: Row[] = [
  { key: 'up_aes_MBps', label: 'upload aes128-gcm, MB/s (OpenSSH client)', phase: 'throughput', target: { on: 'ratio', op: '>=', value: 0.95 } },
  { key: 'down_aes_MBps', label: 'download aes128-gcm, MB/s', phase: 'throughput', target: { on: 'ratio', op: '>=', value: 0.95 } },
  { key: 'up_chacha_MBps', label: 'upload chacha20-poly1305, MB/s', phase: 'throughput', target: { on: 'ratio', op: '>=', value: 0.95 } },
  { key: 'down_chacha_MBps', label: 'download chacha20-poly1305, MB/s', phase: 'throughput', target: { on: 'ratio', op: '>=', value: 0.95 } },
  { key: 'cpu_up_aes_ms_per_MiB', label: 'server CPU per MiB, upload aes128-gcm, ms', phase: 'throughput' },
  { key: 'cpu_down_aes_ms_per_MiB', label: 'server CPU per MiB, download aes128-gcm, ms', phase: 'throughput' },
  { key: 'ssh_exec_ms', label: 'OpenSSH client connect+exec, ms (p50)', phase: 'throughput' },
  { key: 'connect_p50_ms', label: 'connect+exec p50, ms (ssh2 client)', phase: 'connect', target: { on: 'ratio', op: '<=', value: 1.1 } },
  { key: 'connect_p90_ms', label: 'connect+exec p90, ms', phase: 'connect' },
  { key: 'cpu_per_conn_ms', label: 'server CPU per connection, ms', phase: 'connect', target: { on: 'ratio', op: '<=', value: 1.15 } },
  { key: 'echo_p50_us', label: '1-byte echo round trip p50, µs', phase: 'echo' },
  { key: 'echo_p99_us', label: '1-byte echo round trip p99, µs', phase: 'echo' },
  { key: 'mem_heap_ext_KB', label: 'memory per idle session, heap+external KB', phase: 'memory', target: { on: 'ratio', op: '<=', value: 1.25 } },
  { key: 'mem_rss_KB', label: 'memory per idle session, RSS KB, 1st rep (sshd: PSS)', phase: 'memory' },
  { key: 'stream_MBps', label: 'source stream without pty, MB/s (ssh2 client)', phase: 'pty' },
  { key: 'pty_stream_MBps', label: 'source stream with pty (\\n→\\r\\n), MB/s', phase: 'pty' },
  { key: 'pty_ratio', label: 'pty / non-pty streaming (median of paired runs)', phase: 'pty', target: { on: 'value', op: '>=', value: 0.9 } },
  { key: 'stream_cpu_ms_per_MiB', label: 'server CPU per MiB, stream without pty, ms', phase: 'pty' },
  { key: 'pty_stream_cpu_ms_per_MiB', label: 'server CPU per MiB, stream with pty, ms', phase: 'pty' },
];

interface TableRow {
  key: string;
  label: string;
  raw: number | null;
  glidessh: number | null;
  ratio: number | null;
  target: string;
  pass: boolean | null;
  sshd: number | null;
}

function buildRows(phases: Set<Phase>, sshdShown: boolean): TableRow[] {
  return ROWS.filter((r) => phases.has(r.phase)).map((r) => {
    const raw = results.raw.metrics[r.key] ?? null;
    const g = results.glidessh.metrics[r.key] ?? null;
    const ratio = raw !== null && g !== null && raw !== 0 ? g / raw : null;
    let pass: boolean | null = null;
    let target = '—';
    if (r.target) {
      const checked = r.target.on === 'ratio' ? ratio : g;
      target = `${r.target.on === 'ratio' ? 'ratio' : 'glidessh'} ${r.target.op === '>=' ? '≥' : '≤'} ${r.target.value.toFixed(2)}`;
      if (checked !== null) pass = r.target.op === '>=' ? checked >= r.target.value : checked <= r.target.value;
    }
    return { key: r.key, label: r.label, raw, glidessh: g, ratio, target, pass, sshd: sshdShown ? (results.sshd.metrics[r.key] ?? null) : null };
  });
}

function markdown(rows: TableRow[], sshdShown: boolean): string {
  const head = `| metric | raw ssh2 | glidessh | glidessh/raw | target | result |${sshdShown ? ' sshd |' : ''}`;
  const sep = `|---|---:|---:|---:|---|---|${sshdShown ? '---:|' : ''}`;
  const lines = rows.map((r) => {
    const result = r.pass === null ? (r.target === '—' ? '' : 'n/a') : r.pass ? 'pass' : '**FAIL**';
    return `| ${r.label} | ${fmt(r.raw)} | ${fmt(r.glidessh)} | ${r.ratio === null ? 'n/a' : `${r.ratio.toFixed(2)}×`} | ${r.target} | ${result} |${sshdShown ? ` ${fmt(r.sshd)} |` : ''}`;
  });
  return [head, sep, ...lines].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

async function machine(): Promise<Record<string, unknown>> {
  let cpuModel = cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel;
  } catch {
    // not Linux
  }
  const pkg = (name: string): string => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return {
    cpu: cpuModel,
    cores: cpus().length,
    node: process.version,
    ssh2: pkg('ssh2'),
    glidessh: own.version,
    openssh: await sshClientVersion(),
    loadavgStart: loadavg(),
  };
}

async function main(): Promise<number> {
  installSignalHandlers();
  const args = parseArgs(process.argv.slice(2));
  const cfg = CONFIGS[args.mode];
  const started = Date.now();
  const deadline = new Deadline(cfg.budgetMs);
  // A hard stop in case something hangs past every per-operation timeout.
  setTimeout(() => {
    process.stderr.write(`bench: hard time limit (${cfg.budgetMs + 60_000} ms) reached\n`);
    void cleanup().finally(() => process.exit(1));
  }, cfg.budgetMs + 60_000).unref();
  onCleanup(() => client.destroyAllClients());

  await buildServers();
  const info = await machine();
  if (!info['openssh']) throw new Error('the OpenSSH client (ssh) is needed for the throughput runs');
  log(`mode ${args.mode}; ${info['cpu']} × ${info['cores']}, node ${info['node']}, ssh2 ${info['ssh2']}`);

  const dir = mkdtempSync(join(tmpdir(), 'glidessh-bench-'));
  removeOnCleanup(dir);
  const host = ssh2.utils.generateKeyPairSync('ed25519');
  const hostKeyFile = join(dir, 'host_ed25519');
  writeFileSync(hostKeyFile, host.private, { mode: 0o600 });

  let sshdWhy: string | null = args.sshd ? sshdUnavailable() : 'skipped (--no-sshd)';
  let sshdTarget: Target | undefined;
  if (!sshdWhy) {
    try {
      const user = userInfo().username;
      const key = ssh2.utils.generateKeyPairSync('ed25519');
      const clientKeyFile = join(dir, 'client_ed25519');
      writeFileSync(clientKeyFile, key.private, { mode: 0o600 });
      const sshd: Sshd = await startSshd({
        dir,
        port: await freePort(),
        user,
        hostKeyFile,
        clientKeyFile,
        clientPrivateKey: key.private,
        authorizedKey: key.public,
      });
      onCleanup(() => sshd.stop());
      sshdTarget = {
        key: 'sshd',
        ep: { port: sshd.port, user, privateKey: key.private },
        sshdPid: sshd.pid,
        identity: clientKeyFile,
        ssh: Object.fromEntries(CIPHERS.map((c) => [c, sshArgs(sshd.port, user, c, clientKeyFile)])) as Record<Cipher, string[]>,
      };
      log(`sshd on port ${sshd.port}`);
    } catch (err) {
      sshdWhy = (err as Error).message.split('\n')[0]!;
    }
  }
  if (sshdWhy) {
    log(`sshd: n/a — ${sshdWhy}`);
    results.sshd.notes.push(sshdWhy);
  }
  const sshdShown = sshdTarget !== undefined;

  const phases: Array<[Phase, (targets: Target[]) => Promise<void>]> = [
    ['sanity', (targets) => sanity(targets)],
    ['memory', (targets) => memoryPhase(targets, cfg, deadline)],
    ['connect', (targets) => connectPhase(targets, cfg, deadline)],
    ['echo', (targets) => echoPhase(targets, cfg, deadline)],
    ['pty', (targets) => ptyPhase(targets, cfg, deadline)],
    ['throughput', (targets) => throughputPhase(targets, cfg, deadline, dir)],
  ];
  for (const [name, run] of phases) {
    if (!args.phases.has(name)) continue;
    if (deadline.passed) {
      notes.push(`time budget spent before phase "${name}"`);
      log(`time budget spent, skipping ${name}`);
      continue;
    }
    // Fresh Node servers for every phase: a server's heap after thousands of connections
    // streams measurably slower, and results must not depend on which phases ran before.
    const t0 = nowMs();
    const fresh: Target[] = [];
    try {
      for (const key of rotate(['raw', 'glidessh'] as const, fresh.length + PHASES.indexOf(name))) {
        fresh.push(await startNodeServer(key, hostKeyFile, args, cfg.budgetMs, name));
      }
      fresh.sort((a, b) => (a.key === 'raw' ? -1 : b.key === 'raw' ? 1 : 0));
      const targets = sshdTarget ? [...fresh, sshdTarget] : fresh;
      log(`${name}… (raw ssh2 on port ${fresh[0]!.ep.port}, glidessh on port ${fresh[1]!.ep.port})`);
      await run(targets);
    } finally {
      await Promise.all(fresh.map((t) => t.stop?.()));
    }
    log(`${name} done in ${((nowMs() - t0) / 1000).toFixed(1)} s`);
  }
  if (deadline.passed) notes.push(`time budget of ${cfg.budgetMs} ms was reached; some loops stopped early`);

  const rows = buildRows(args.phases, sshdShown);
  const table = markdown(rows, sshdShown);
  const date = new Date().toISOString();
  info['loadavgEnd'] = loadavg();
  const checked = rows.filter((r) => r.target !== '—');
  const failedRows = checked.filter((r) => r.pass === false).map((r) => r.key);
  const missing = rows.filter((r) => r.raw === null || r.glidessh === null).map((r) => r.key);

  const header = [
    `## glidessh benchmark (${args.mode})`,
    '',
    `${date} · ${info['cpu']} · ${info['cores']} cores · node ${info['node']} · ssh2 ${info['ssh2']} · ${info['openssh']}`,
    `load average at start ${(info['loadavgStart'] as number[]).map((v) => v.toFixed(2)).join(' ')}, at end ${(info['loadavgEnd'] as number[]).map((v) => v.toFixed(2)).join(' ')}`,
    '',
  ];
  const footer = [
    '',
    `targets: ${checked.length - failedRows.length - checked.filter((r) => r.pass === null).length}/${checked.length} pass` +
      (failedRows.length ? ` — failing: ${failedRows.join(', ')}` : ''),
    sshdShown ? '' : `sshd: n/a (${sshdWhy})`,
    ...results.sshd.notes.filter((n) => n !== sshdWhy).map((n) => `sshd: ${n}`),
    ...(['raw', 'glidessh'] as const).flatMap((k) => results[k].notes.map((n) => `${LABELS[k]}: ${n}`)),
    ...notes,
  ].filter(Boolean);
  process.stdout.write(`${[...header, table, ...footer].join('\n')}\n`);

  const json = {
    benchmark: 'glidessh',
    version: 1,
    mode: args.mode,
    date,
    durationMs: Date.now() - started,
    machine: info,
    config: cfg,
    phases: [...args.phases],
    servers: {
      raw: { label: LABELS.raw, ...results.raw },
      glidessh: { label: LABELS.glidessh, ...results.glidessh },
      sshd: sshdShown ? { label: LABELS.sshd, ...results.sshd } : { label: LABELS.sshd, unavailable: sshdWhy, notes: results.sshd.notes },
    },
    rows,
    targets: { checked: checked.length, failing: failedRows, allPass: failedRows.length === 0 && checked.every((r) => r.pass !== null) },
    missing,
    notes,
    table,
  };
  mkdirSync(dirname(args.json), { recursive: true });
  writeFileSync(args.json, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${args.json}`);
  if (missing.length) {
    process.stderr.write(`bench: no value for ${missing.join(', ')}\n`);
    return 1;
  }
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  if (!stopping()) process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
  code = 1;
} finally {
  await cleanup();
}
process.exit(code);
