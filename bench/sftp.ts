/**
 * SFTP throughput: glidessh's sftpHandler against OpenSSH's own sftp-server (under a
 * throwaway sshd on loopback), in the same run, with the same client (`sftp -b`, the same
 * cipher and key exchange), as a ratio.
 *
 *   npm run bench:sftp                  256 MiB get and put, 7 samples each per server (2–3 minutes)
 *   npm run bench:sftp -- --quick       64 MiB, 3 samples
 *   npm run bench:sftp -- --smoke       4 MiB, 1 sample (what test/bench/sftp-smoke.test.ts runs)
 *   npm run bench:sftp -- --json out.json
 *
 * One sample is the time of a `sftp -b` session with three transfers minus one with a single
 * transfer, halved: one transfer without session setup and teardown. Samples alternate between
 * the servers; the table shows medians. Server CPU is the server's process tree (user +
 * system), counted the same way.
 * Everything started here (the glidessh server process, sshd) is stopped at the end, on error
 * and on Ctrl-C; the whole run is bounded in time.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { treeCpuMs } from './lib/openssh.js';
import { cleanup, installSignalHandlers, removeOnCleanup, runCommand, spawnTracked, waitForLine } from './lib/procs.js';
import { fmt, median, nowMs, sleep } from './lib/util.js';

const SSHD = '/usr/sbin/sshd';
const SFTP_SERVER = ['/usr/lib/openssh/sftp-server', '/usr/libexec/openssh/sftp-server', '/usr/libexec/sftp-server'].find(existsSync);
const MiB = 1024 * 1024;
const TARGET = 0.8;

// --- server mode: `bench/sftp.ts --serve ROOT` runs the glidessh server -------------------

if (process.argv[2] === '--serve') {
  const { Server, sftpHandler } = await import('../src/index.js');
  const server = new Server({ hostKeys: [readFileSync(process.argv[4]!)], subsystemHandlers: { sftp: sftpHandler({ root: process.argv[3]! }) } });
  const { port } = await server.listen(0, '127.0.0.1');
  console.log(`PORT ${port}`);
  // Exit when the benchmark's pipe closes (also if it dies).
  process.stdin.resume();
  process.stdin.on('end', () => void server.close().finally(() => process.exit(0)));
} else {
  await main();
}

interface Target {
  name: string;
  label: string;
  port: number;
  pid: number;
  user: string;
  /** The directory the server's files live in on this machine. */
  dir: string;
  identity?: string;
}

function clientArgs(t: Target): string[] {
  return [
    '-q', '-F', '/dev/null', '-P', String(t.port),
    '-c', 'aes128-gcm@openssh.com',
    '-o', 'KexAlgorithms=curve25519-sha256', '-o', 'HostKeyAlgorithms=ssh-ed25519', '-o', 'Compression=no',
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=10', '-o', 'LogLevel=ERROR',
    ...(t.identity ? ['-i', t.identity, '-o', 'IdentitiesOnly=yes'] : ['-o', 'IdentitiesOnly=yes', '-o', 'IdentityFile=/dev/null']),
    '-b', '-', `${t.user}@127.0.0.1`,
  ];
}

/** One `sftp -b` session; resolves with its wall time in ms. */
async function session(t: Target, script: string, ms: number): Promise<number> {
  const t0 = nowMs();
  const child = spawnTracked('sftp', clientArgs(t), { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin!.end(script);
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`sftp to ${t.label} exited ${code}: ${err.trim()}`);
  return nowMs() - t0;
}

function cpuMs(pid: number): number {
  return treeCpuMs(pid) ?? Number.NaN;
}

/** Waits (at most 2 s) until sshd reaped its per-connection processes, so their CPU is counted. */
async function settled(t: Target): Promise<void> {
  if (t.name !== 'sshd') return;
  for (let i = 0; i < 100; i++) {
    let children = '';
    try {
      children = readFileSync(`/proc/${t.pid}/task/${t.pid}/children`, 'utf8').trim();
    } catch {
      return sleep(200);
    }
    if (children === '') return;
    await sleep(20);
  }
}

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function startGlidessh(work: string, hostKey: string): Promise<Target> {
  const root = join(work, 'glidessh-root');
  mkdirSync(root);
  const child = spawnTracked(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--serve', root, hostKey], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const m = await waitForLine(child, /^PORT (\d+)$/, 20_000, 'glidessh sftp server');
  return { name: 'glidessh', label: 'glidessh sftpHandler', port: Number(m[1]), pid: child.pid!, user: 'bench', dir: root };
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  return port;
}

/** sshd -D -e with its own config: host key, one authorized key, `Subsystem sftp <sftp-server>`. */
async function startSshd(work: string, hostKey: string): Promise<Target | string> {
  if (!existsSync(SSHD) || !SFTP_SERVER) return `${SSHD} or sftp-server not installed (Debian: openssh-server)`;
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) return 'missing /run/sshd (sshd privilege separation directory)';
  const key = join(work, 'client_ed25519');
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  const authorized = join(work, 'authorized_keys');
  writeFileSync(authorized, readFileSync(`${key}.pub`), { mode: 0o600 });
  const dir = join(work, 'sshd-root');
  mkdirSync(dir);
  const port = await freePort();
  const user = process.env.USER ?? (process.getuid?.() === 0 ? 'root' : spawnSync('id', ['-un'], { encoding: 'utf8' }).stdout.trim());
  const config = join(work, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, 'PidFile none', `AuthorizedKeysFile ${authorized}`,
      'StrictModes no', 'UsePAM no', 'PubkeyAuthentication yes', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
      process.getuid?.() === 0 ? 'PermitRootLogin prohibit-password' : '', `Subsystem sftp ${SFTP_SERVER}`, 'UseDNS no',
      'X11Forwarding no', 'AllowTcpForwarding no', 'ClientAliveInterval 0', 'LogLevel ERROR', '',
    ].join('\n'),
  );
  const check = await runCommand(SSHD, ['-t', '-f', config], 10_000);
  if (check.code !== 0) return `sshd -t failed: ${check.stderr.trim()}`;
  const child = spawnTracked(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  const t: Target = { name: 'sshd', label: 'OpenSSH sftp-server', port, pid: child.pid!, user, dir, identity: key };
  for (let i = 0; i < 50; i++) {
    try {
      await session(t, 'pwd\n', 5_000);
      return t;
    } catch {
      if (child.exitCode !== null) return `sshd exited ${child.exitCode}`;
      await sleep(100);
    }
  }
  return 'sshd did not answer';
}

async function main(): Promise<void> {
  installSignalHandlers();
  const args = process.argv.slice(2);
  const mode = args.includes('--smoke') ? 'smoke' : args.includes('--quick') ? 'quick' : 'full';
  const jsonAt = args.indexOf('--json');
  const jsonPath = jsonAt >= 0 ? args[jsonAt + 1] : undefined;
  const size = { full: 256, quick: 64, smoke: 4 }[mode] * MiB;
  const reps = { full: 7, quick: 3, smoke: 1 }[mode];
  const budgetMs = { full: 10 * 60_000, quick: 3 * 60_000, smoke: 60_000 }[mode];
  const started = Date.now();
  const perRunMs = Math.max(20_000, (size / MiB) * 400);
  try {
    const work = mkdtempSync(join(tmpdir(), 'glidessh-bench-sftp-'));
    removeOnCleanup(work);
    const hostKey = join(work, 'host_ed25519');
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    const source = join(work, 'source.bin');
    writeFileSync(source, randomBytes(size));
    const sourceSha = await sha256(source);

    const targets: Target[] = [];
    const notes: string[] = [];
    const sshd = await startSshd(work, hostKey);
    if (typeof sshd === 'string') notes.push(`sshd: ${sshd}`);
    else targets.push(sshd);
    targets.push(await startGlidessh(work, hostKey));

    // sshd's sftp-server sees the real filesystem; glidessh's root is its directory.
    const remoteFile = (t: Target, name: string): string => (t.name === 'sshd' ? join(t.dir, name) : `/${name}`);
    for (const t of targets) writeFileSync(join(t.dir, 'get.bin'), readFileSync(source));

    const results: Record<string, { get: number[]; put: number[]; cpuGet: number[]; cpuPut: number[] }> = {};
    for (const t of targets) results[t.name] = { get: [], put: [], cpuGet: [], cpuPut: [] };
    const script = (t: Target, dir: 'get' | 'put', k: number): string =>
      Array.from({ length: k }, (_, i) =>
        dir === 'get' ? `get ${remoteFile(t, 'get.bin')} ${join(work, `dl-${t.name}.bin`)}` : `put ${source} ${remoteFile(t, `put${i}.bin`)}`,
      ).join('\n') + '\n';
    // One sample: a session with 3 transfers minus a session with 1, halved: the time of one
    // transfer, without the session's setup and teardown (about 0.2 s for sshd, with a spread).
    const sample = async (t: Target, dir: 'get' | 'put'): Promise<{ ms: number; cpu: number }> => {
      await settled(t);
      const c0 = cpuMs(t.pid);
      const one = await session(t, script(t, dir, 1), perRunMs);
      await settled(t);
      const c1 = cpuMs(t.pid);
      const three = await session(t, script(t, dir, 3), perRunMs * 3);
      await settled(t);
      const c2 = cpuMs(t.pid);
      // A tiny (smoke) transfer can drown in the setup's spread: then count the whole session.
      const ms = three > one ? (three - one) / 2 : three / 3;
      return { ms, cpu: (c2 - c1 - (c1 - c0)) / 2 };
    };
    const warm = reps > 1 ? 1 : 0;
    for (let rep = 0; rep < reps + warm; rep++) {
      if (Date.now() - started > budgetMs) {
        notes.push(`time budget reached after ${rep} rounds`);
        break;
      }
      // Round 0 checks the bytes (and warms up unless it is the only one); the order alternates.
      const order = rep % 2 === 0 ? targets : [...targets].reverse();
      for (const dir of ['get', 'put'] as const) {
        for (const t of order) {
          const r = results[t.name]!;
          const s = await sample(t, dir);
          if (rep === 0) {
            const got = dir === 'get' ? join(work, `dl-${t.name}.bin`) : join(t.dir, 'put0.bin');
            if ((await sha256(got)) !== sourceSha) throw new Error(`${t.label}: ${dir} bytes differ`);
          }
          if (rep < warm) continue;
          r[dir].push(s.ms);
          r[dir === 'get' ? 'cpuGet' : 'cpuPut'].push(s.cpu);
        }
      }
    }

    const mbps = (name: string, dir: 'get' | 'put'): number | null => {
      const r = results[name];
      if (!r || r[dir].length === 0) return null;
      const t = median(r[dir]);
      return t > 0 ? size / 1e6 / (t / 1000) : null;
    };
    const cpuPerMiB = (name: string, dir: 'get' | 'put'): number | null => {
      const r = results[name];
      const v = r ? median(dir === 'get' ? r.cpuGet : r.cpuPut) : Number.NaN;
      return Number.isFinite(v) ? v / (size / MiB) : null;
    };
    const rows = (['get', 'put'] as const).map((dir) => {
      const ours = mbps('glidessh', dir);
      const theirs = mbps('sshd', dir);
      const ratio = ours !== null && theirs !== null ? ours / theirs : null;
      return {
        key: `${dir}_MBps`,
        label: `sftp ${dir} ${size / MiB} MiB, MB/s`,
        sshd: theirs,
        glidessh: ours,
        ratio,
        pass: ratio === null ? null : ratio >= TARGET,
        cpuSshd: cpuPerMiB('sshd', dir),
        cpuGlidessh: cpuPerMiB('glidessh', dir),
      };
    });
    const lines = [
      `| transfer | OpenSSH sftp-server | glidessh | glidessh/OpenSSH | target | result |`,
      `|---|---|---|---|---|---|`,
      ...rows.map((r) => `| ${r.label} | ${fmt(r.sshd)} | ${fmt(r.glidessh)} | ${fmt(r.ratio)} | ≥ ${TARGET} | ${r.pass === null ? 'n/a' : r.pass ? 'pass' : 'FAIL'} |`),
      ...rows.map((r) => `| server CPU ms/MiB (${r.key.slice(0, 3)}) | ${fmt(r.cpuSshd)} | ${fmt(r.cpuGlidessh)} | ${fmt(r.cpuSshd && r.cpuGlidessh ? r.cpuGlidessh / r.cpuSshd : null)} | | |`),
    ];
    const table = lines.join('\n');
    console.log(`\nsftp benchmark (${mode}): ${reps} sample(s) per server and direction, aes128-gcm, curve25519, \`sftp -b\`\n`);
    console.log(table);
    for (const note of notes) console.log(`\nnote: ${note}`);
    const json = { benchmark: 'glidessh-sftp', mode, date: new Date().toISOString(), size, reps, rows, table, notes, samples: results };
    const out = jsonPath ?? join('bench', 'results', `sftp-${mode}.json`);
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(out, JSON.stringify(json, null, 2));
    if (rows.some((r) => r.glidessh === null)) process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
