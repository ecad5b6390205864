/**
 * Stress: well-behaved clients run exec sessions against a glidessh server (its own process)
 * for a fixed time while misbehaving clients run alongside — slow-loris sockets, garbage bytes,
 * failed logins, abandoned sessions, clients that stop reading. Prints the connections and
 * sessions served, the failures, exec latency (p50/p99) and the server's peak RSS.
 *
 *   npm run bench:stress                      30 s, 32 well-behaved clients
 *   npm run bench:stress -- --quick           10 s
 *   … --seconds S --clients N                 other sizes (bounded: S <= 600, N <= 500)
 *   … --max-startups start:rate:full          the server's maxStartups (default: the library's 10:30:100)
 *   … --json <path>                           where to write the figures (default bench/results/stress[-quick].json)
 *
 * Loopback only: each kind of client has its own source address (127.0.0.x), the well-behaved
 * ones one each (127.0.1.x), so the per-source limits and penalty boxes act as they would.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import { cleanup, installSignalHandlers, removeOnCleanup, spawnTracked, waitForLine } from './lib/procs.js';
import { nowMs, percentile, sleep, withTimeout } from './lib/util.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Arguments

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i === -1 ? undefined : argv[i + 1];
};
const quick = argv.includes('--quick');
const seconds = Math.min(600, Math.max(1, Number(flag('--seconds') ?? (quick ? 10 : 30))));
const clients = Math.min(500, Math.max(1, Number(flag('--clients') ?? 32)));
const maxStartups = flag('--max-startups');
const jsonPath = flag('--json') ?? join(ROOT, 'bench', 'results', quick ? 'stress-quick.json' : 'stress.json');

// ---------------------------------------------------------------------------------------------
// Bookkeeping

const tally = (m: Record<string, number>, k: string): void => void (m[k] = (m[k] ?? 0) + 1);
const good = {
  connections: 0,
  sessions: 0,
  failures: {} as Record<string, number>,
  execMs: [] as number[],
  connectMs: [] as number[],
};
const bad = {
  slowloris: { opened: 0, refused: 0, cut: 0, cutMs: [] as number[] },
  garbage: { sent: 0, closedByServer: 0 },
  authFail: { attempts: 0, refused: 0, rejected: 0, other: {} as Record<string, number> },
  abandon: { sessions: 0, refused: 0 },
  stall: { clients: 0, cutByServer: 0, gaveUp: 0, refused: 0 },
};
const live = new Set<ssh2.Client | net.Socket>();

function classify(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  if (/before handshake/.test(m)) return 'refused';
  if (/timed out/i.test(m)) return 'timeout';
  if (/authentication methods failed/.test(m)) return 'auth';
  return m.slice(0, 60);
}

/** Connects an ssh2 client from `localAddress`; rejects with the error that ended it (bounded). */
function login(port: number, localAddress: string, password: string): Promise<ssh2.Client> {
  const client = new ssh2.Client();
  live.add(client);
  client.once('close', () => live.delete(client));
  const ready = new Promise<ssh2.Client>((resolve, reject) => {
    client.once('ready', () => {
      client.off('error', reject);
      client.on('error', () => undefined);
      resolve(client);
    });
    client.once('error', reject);
  });
  client.connect({ host: '127.0.0.1', port, localAddress, username: 'good', password, readyTimeout: 10_000 });
  return withTimeout(ready, 11_000, 'login', () => client.destroy()).catch((err: unknown) => {
    client.destroy();
    throw err;
  });
}

/** Runs an exec and collects stdout until the channel closes (bounded). */
function run(client: ssh2.Client, command: string, ms = 10_000): Promise<{ out: number; code: number | null }> {
  const done = new Promise<{ out: number; code: number | null }>((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      let out = 0;
      let code: number | null = null;
      ch.on('data', (d: Buffer) => (out += d.length));
      ch.stderr.resume();
      ch.on('exit', (c: number | null) => (code = c));
      ch.on('close', (c?: number | null) => resolve({ out, code: code ?? (typeof c === 'number' ? c : null) }));
    });
  });
  return withTimeout(done, ms, `exec ${command}`);
}

async function closeClient(c: ssh2.Client): Promise<void> {
  const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
  c.end();
  await withTimeout(closed, 5_000, 'close', () => c.destroy()).catch(() => c.destroy());
}

// ---------------------------------------------------------------------------------------------
// The clients

/** A well-behaved client: connect, 20 execs of `work` one after another, disconnect; repeat. */
async function wellBehaved(port: number, i: number, deadline: number): Promise<void> {
  const src = `127.0.1.${(i % 250) + 1}`;
  while (nowMs() < deadline) {
    const t0 = nowMs();
    let c: ssh2.Client;
    try {
      c = await login(port, src, 'good');
    } catch (err) {
      tally(good.failures, `connect: ${classify(err)}`);
      await sleep(50);
      continue;
    }
    good.connections++;
    good.connectMs.push(nowMs() - t0);
    for (let k = 0; k < 20 && nowMs() < deadline; k++) {
      const t1 = nowMs();
      try {
        const r = await run(c, 'work');
        if (r.out === 1024 && r.code === 0) {
          good.sessions++;
          good.execMs.push(nowMs() - t1);
        } else tally(good.failures, `exec: output ${r.out} bytes, code ${r.code}`);
      } catch (err) {
        tally(good.failures, `exec: ${classify(err)}`);
        break;
      }
    }
    await closeClient(c);
  }
}

/** Keeps up to 50 sockets from 127.0.0.3 that send only an identification line (at most 100 new per second). */
async function slowloris(port: number, deadline: number): Promise<void> {
  let open = 0;
  while (nowMs() < deadline) {
    for (let k = 0; k < 10 && open < 50; k++) {
      open++;
      bad.slowloris.opened++;
      const start = nowMs();
      const sock = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.3' });
      live.add(sock);
      let bytes = 0;
      sock.on('error', () => undefined);
      sock.on('data', (d: Buffer) => (bytes += d.length));
      sock.once('connect', () => sock.write('SSH-2.0-slow\r\n'));
      sock.once('close', () => {
        open--;
        live.delete(sock);
        if (bytes === 0) bad.slowloris.refused++;
        else if (nowMs() < deadline) {
          bad.slowloris.cut++;
          bad.slowloris.cutMs.push(nowMs() - start);
        }
      });
    }
    await sleep(100);
  }
}

/** Sends 512 random bytes from 127.0.0.4 and waits for the server to close; repeats. */
async function garbage(port: number, deadline: number): Promise<void> {
  while (nowMs() < deadline) {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.4' });
    live.add(sock);
    sock.on('error', () => undefined);
    sock.on('data', () => undefined);
    const closed = new Promise<boolean>((resolve) => sock.once('close', () => resolve(true)));
    sock.once('connect', () => sock.write(randomBytes(512)));
    bad.garbage.sent++;
    if (await withTimeout(closed, 3_000, 'garbage close').catch(() => false)) bad.garbage.closedByServer++;
    sock.destroy();
    live.delete(sock);
    await sleep(20);
  }
}

/** Logs in from 127.0.0.5 with a wrong password; repeats (the penalty box soon refuses it). */
async function authFail(port: number, deadline: number): Promise<void> {
  while (nowMs() < deadline) {
    bad.authFail.attempts++;
    try {
      const c = await login(port, '127.0.0.5', 'wrong');
      tally(bad.authFail.other, 'logged in?!');
      c.destroy();
    } catch (err) {
      const k = classify(err);
      if (k === 'refused') bad.authFail.refused++;
      else if (k === 'auth') bad.authFail.rejected++;
      else tally(bad.authFail.other, k);
    }
    await sleep(20);
  }
}

/** Logs in from 127.0.0.6, opens 3 sessions that wait, then drops the TCP connection without a word. */
async function abandon(port: number, deadline: number): Promise<void> {
  while (nowMs() < deadline) {
    try {
      const c = await login(port, '127.0.0.6', 'good');
      for (let k = 0; k < 3; k++) c.exec('idle', () => undefined);
      await sleep(100);
      bad.abandon.sessions += 3;
      (c as unknown as { _sock: net.Socket })._sock.destroy();
    } catch (err) {
      if (classify(err) === 'refused') bad.abandon.refused++;
    }
    await sleep(50);
  }
}

/**
 * Logs in from 127.0.0.7, asks for 64 MiB and stops reading. After the server's keepalive
 * budget (at most interval × (count + 2) = 4 s) plus a second it reads again: a connection the
 * server cut shows its close then (a paused socket cannot see the FIN).
 */
async function stall(port: number, deadline: number): Promise<void> {
  while (nowMs() + 7_000 < deadline) {
    let c: ssh2.Client;
    try {
      c = await login(port, '127.0.0.7', 'good');
    } catch (err) {
      if (classify(err) === 'refused') bad.stall.refused++;
      await sleep(50);
      continue;
    }
    bad.stall.clients++;
    const sock = (c as unknown as { _sock: net.Socket })._sock;
    const closed = new Promise<boolean>((resolve) => c.once('close', () => resolve(true)));
    c.exec('source 67108864', (err, ch) => {
      if (err) return;
      sock.pause();
      ch.resume();
    });
    await sleep(5_000);
    sock.resume();
    const cut = await withTimeout(closed, 2_000, 'stall').catch(() => false);
    if (cut) bad.stall.cutByServer++;
    else bad.stall.gaveUp++;
    c.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// The server

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  installSignalHandlers();
  const dir = mkdtempSync(join(tmpdir(), 'glidessh-stress-'));
  removeOnCleanup(dir);
  const keyFile = join(dir, 'host_ed25519');
  writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const child = spawnTracked(
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench', 'servers', 'stress-server.ts'), '--host-key', keyFile, '--max-ms', String(seconds * 1000 + 120_000), ...(maxStartups ? ['--max-startups', maxStartups] : [])],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const port = Number((await waitForLine(child, /^PORT (\d+)$/, 30_000, 'stress server'))[1]);
  const pid = child.pid!;
  const rssStart = rssOf(pid);
  let rssPeak = rssStart;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rssOf(pid))), 100);

  process.stdout.write(
    `glidessh stress: ${seconds} s, ${clients} well-behaved clients (127.0.1.x, 20 execs per connection) alongside\n` +
      `  slow-loris ×50 (127.0.0.3), garbage (127.0.0.4), failed logins (127.0.0.5), abandoned sessions (127.0.0.6), stalled readers (127.0.0.7)\n` +
      `  server maxStartups ${maxStartups ?? '10:30:100 (default)'}\n`,
  );
  const start = nowMs();
  const deadline = start + seconds * 1000;
  const workers = [
    ...Array.from({ length: clients }, (_, i) => wellBehaved(port, i, deadline)),
    slowloris(port, deadline),
    garbage(port, deadline),
    authFail(port, deadline),
    abandon(port, deadline),
    stall(port, deadline),
  ];
  const progress = setInterval(() => {
    process.stdout.write(`  ${((nowMs() - start) / 1000).toFixed(0)} s: ${good.sessions} sessions, RSS ${(rssOf(pid) / MiB).toFixed(0)} MiB\n`);
  }, 5_000);
  await Promise.race([Promise.all(workers), sleep(seconds * 1000 + 20_000)]);
  clearInterval(progress);
  const elapsed = (nowMs() - start) / 1000;
  for (const c of live) c.destroy();
  live.clear();

  // The server's own view, after the dust settled.
  await sleep(500);
  let stats: Record<string, unknown> = {};
  try {
    const c = await login(port, '127.0.0.9', 'good');
    const text = await new Promise<string>((resolve, reject) => {
      c.exec('stats', (err, ch) => {
        if (err) return reject(err);
        let s = '';
        ch.on('data', (d: Buffer) => (s += d));
        ch.on('close', () => resolve(s));
      });
    });
    stats = JSON.parse(text) as Record<string, unknown>;
    await closeClient(c);
  } catch (err) {
    stats = { error: String(err) };
  }
  clearInterval(sampler);
  const rssEnd = rssOf(pid);
  const alive = child.exitCode === null && child.signalCode === null;

  const failures = Object.values(good.failures).reduce((a, b) => a + b, 0);
  const ms = (v: number): string => `${v.toFixed(1)} ms`;
  const result = {
    seconds: Number(elapsed.toFixed(1)),
    clients,
    maxStartups: maxStartups ?? '10:30:100',
    serverAlive: alive,
    wellBehaved: {
      connections: good.connections,
      sessions: good.sessions,
      sessionsPerSecond: Math.round(good.sessions / elapsed),
      failures,
      failuresByKind: good.failures,
      execP50Ms: percentile(good.execMs, 50),
      execP99Ms: percentile(good.execMs, 99),
      execMaxMs: percentile(good.execMs, 100),
      connectP50Ms: percentile(good.connectMs, 50),
      connectP99Ms: percentile(good.connectMs, 99),
    },
    misbehaving: {
      ...bad,
      slowloris: { ...bad.slowloris, cutMs: undefined, cutP50Ms: percentile(bad.slowloris.cutMs, 50) },
    },
    serverRss: { startMiB: rssStart / MiB, peakMiB: rssPeak / MiB, endMiB: rssEnd / MiB },
    server: stats,
  };
  const w = result.wellBehaved;
  process.stdout.write(
    [
      ``,
      `well-behaved: ${w.connections} connections, ${w.sessions} sessions served (${w.sessionsPerSecond}/s), ${failures} failures ${failures ? JSON.stringify(good.failures) : ''}`,
      `  exec latency p50 ${ms(w.execP50Ms)}, p99 ${ms(w.execP99Ms)}, max ${ms(w.execMaxMs)}; connect p50 ${ms(w.connectP50Ms)}, p99 ${ms(w.connectP99Ms)}`,
      `server RSS: start ${(rssStart / MiB).toFixed(0)} MiB, peak ${(rssPeak / MiB).toFixed(0)} MiB, end ${(rssEnd / MiB).toFixed(0)} MiB; ${alive ? 'alive' : 'DEAD'}`,
      `slow-loris: ${bad.slowloris.opened} sockets, ${bad.slowloris.refused} refused at once, ${bad.slowloris.cut} cut (p50 ${ms(result.misbehaving.slowloris.cutP50Ms)})`,
      `garbage: ${bad.garbage.sent} connections, ${bad.garbage.closedByServer} closed by the server within 3 s (the rest wait for a line end until handshakeTimeout)`,
      `failed logins: ${bad.authFail.attempts} attempts, ${bad.authFail.rejected} rejected, ${bad.authFail.refused} refused (penalty box) ${JSON.stringify(bad.authFail.other)}`,
      `abandoned: ${bad.abandon.sessions} sessions dropped with their connection; ${bad.abandon.refused} logins refused`,
      `stalled readers: ${bad.stall.clients}, ${bad.stall.cutByServer} cut by the server, ${bad.stall.gaveUp} given up by us`,
      `server counters: ${JSON.stringify(stats)}`,
      ``,
    ].join('\n'),
  );
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`figures written to ${jsonPath}\n`);
  await cleanup();
  process.exit(alive ? 0 : 1);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`stress: ${(err as Error)?.stack ?? err}\n`);
  await cleanup();
  process.exit(1);
});
