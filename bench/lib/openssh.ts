/**
 * OpenSSH on both ends: the `ssh` client used for throughput, and — when installed — an
 * `sshd` with its own config on a high loopback port as a third column.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnTracked, runCommand } from './procs.js';
import { nowMs, sleep } from './util.js';

export const SSHD = '/usr/sbin/sshd';
export const CIPHERS = ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com'] as const;
export type Cipher = (typeof CIPHERS)[number];

/** Whether the OpenSSH client runs here. */
export async function sshClientVersion(): Promise<string | null> {
  const r = await runCommand('ssh', ['-V'], 5_000);
  if (r.code !== 0) return null;
  return (r.stderr || r.stdout).trim();
}

/** Client options shared by every run: no config, no prompts, fixed KEX and host key type. */
export function sshArgs(
  port: number,
  user: string,
  cipher: Cipher,
  identity?: string,
  control?: { path: string; master: boolean },
): string[] {
  return [
    '-F', '/dev/null',
    '-p', String(port),
    '-T', '-x', '-a',
    '-c', cipher,
    '-o', 'Compression=no',
    '-o', 'KexAlgorithms=curve25519-sha256',
    '-o', 'HostKeyAlgorithms=ssh-ed25519',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'ServerAliveInterval=0',
    '-o', 'LogLevel=ERROR',
    ...(control
      ? ['-o', `ControlPath=${control.path}`, '-o', `ControlMaster=${control.master ? 'yes' : 'no'}`, '-o', 'ControlPersist=no']
      : ['-o', 'ControlMaster=no', '-o', 'ControlPath=none']),
    ...(identity ? ['-i', identity, '-o', 'IdentitiesOnly=yes'] : ['-o', 'IdentitiesOnly=yes', '-o', 'IdentityFile=/dev/null']),
    `${user}@127.0.0.1`,
  ];
}

export interface Master {
  /** Args for `ssh` clients that run their sessions over the master's connection. */
  args: string[];
  stop(): Promise<void>;
}

/**
 * Starts an OpenSSH ControlMaster (`ssh -M -N`) and resolves once it accepts sessions. Its
 * clients hand their stdin/stdout descriptors to the master, which does the crypto and the
 * I/O itself: the data path is that of a plain `ssh`, without the handshake.
 */
export async function startMaster(port: number, user: string, cipher: Cipher, path: string, identity?: string): Promise<Master> {
  const master = spawnTracked('ssh', ['-M', '-N', ...sshArgs(port, user, cipher, identity, { path, master: true })], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  master.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const args = sshArgs(port, user, cipher, identity, { path, master: false });
  const stop = async (): Promise<void> => {
    if (master.exitCode !== null || master.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => master.once('exit', () => resolve()));
    master.kill('SIGTERM');
    await Promise.race([exited, sleep(3_000)]);
    if (master.exitCode === null && master.signalCode === null) master.kill('SIGKILL');
  };
  for (let i = 0; i < 100; i++) {
    if (master.exitCode !== null) throw new Error(`ssh master exited ${master.exitCode}: ${stderr.trim()}`);
    const r = await runCommand('ssh', ['-O', 'check', ...args], 5_000);
    if (r.code === 0) return { args, stop };
    await sleep(50);
  }
  await stop();
  throw new Error(`ssh master for port ${port} not ready: ${stderr.trim()}`);
}

export interface SshRun {
  code: number | null;
  wallMs: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `ssh … command` with stdin/stdout on the given file descriptors ('pipe' stdout keeps
 * up to 64 KiB) and measures the wall time from spawn to exit. Killed after `ms`.
 */
export function runSsh(args: string[], command: string, stdin: number | 'ignore', stdout: number | 'pipe', ms: number): Promise<SshRun> {
  return new Promise((resolve) => {
    const t0 = nowMs();
    const child = spawnTracked('ssh', [...args, command], { stdio: [stdin, stdout, 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      if (out.length < 65536) out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (err.length < 8192) err += d.toString();
    });
    const timer = setTimeout(() => {
      err += `\n(killed after ${ms} ms)`;
      child.kill('SIGKILL');
    }, ms);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, wallMs: nowMs() - t0, stdout: out, stderr: String(e) });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, wallMs: nowMs() - t0, stdout: out, stderr: err });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// sshd

export interface Sshd {
  pid: number;
  port: number;
  user: string;
  identityFile: string;
  privateKey: string;
  stop(): void;
}

/** Why sshd cannot be benchmarked here, or null when it can. */
export function sshdUnavailable(): string | null {
  if (!existsSync(SSHD)) return `${SSHD} not installed (Debian: openssh-server)`;
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) return 'missing /run/sshd (sshd privilege separation directory)';
  return null;
}

/** The commands, as the Node servers implement them, for sshd's ForceCommand. */
function commandScript(): string {
  const line = Array.from({ length: 79 }, (_, i) => String.fromCharCode(0x61 + (i % 26))).join('');
  return `#!/bin/sh
# glidessh bench: the same commands as bench/servers/common.ts
set -f
set -- $SSH_ORIGINAL_COMMAND
case "$1" in
  sink) exec wc -c ;;
  source) yes '${line}' | head -c "$2"; exit 0 ;;
  echo|idle) exec cat ;;
  true) exit 0 ;;
  *) echo "unknown command: $*" >&2; exit 127 ;;
esac
`;
}

/**
 * Starts sshd -D -e with a config in `dir` on `port` (127.0.0.1), host key `hostKeyFile`,
 * and `authorizedKey` as the only key; resolves once it accepts TCP connections.
 */
export async function startSshd(opts: {
  dir: string;
  port: number;
  user: string;
  hostKeyFile: string;
  clientKeyFile: string;
  clientPrivateKey: string;
  authorizedKey: string;
}): Promise<Sshd> {
  const { dir, port, user } = opts;
  const script = join(dir, 'sshd-commands.sh');
  writeFileSync(script, commandScript());
  chmodSync(script, 0o755);
  mkdirSync(join(dir, 'sshd-home'), { recursive: true });
  const authorized = join(dir, 'authorized_keys');
  writeFileSync(authorized, `${opts.authorizedKey.trim()}\n`, { mode: 0o600 });
  const config = join(dir, 'sshd_config');
  const root = process.getuid?.() === 0;
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${opts.hostKeyFile}`,
      'PidFile none',
      `AuthorizedKeysFile ${authorized}`,
      'StrictModes no',
      'UsePAM no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      root ? 'PermitRootLogin prohibit-password' : '',
      `ForceCommand ${script}`,
      // sshd runs the command through the user's login shell, and bash sources ~/.bashrc when
      // started by sshd: a heavy one (pyenv init, say) made each session cost 100-300 ms and
      // 500 idle sessions took minutes. An empty home for the sessions keeps the rc files out.
      `SetEnv HOME=${join(dir, 'sshd-home')}`,
      'PermitTTY yes',
      'PermitUserRC no',
      'PrintMotd no',
      'PrintLastLog no',
      'UseDNS no',
      'X11Forwarding no',
      'AllowTcpForwarding no',
      'AllowAgentForwarding no',
      'ClientAliveInterval 0',
      'MaxSessions 10',
      'MaxStartups 200:30:400',
      'LoginGraceTime 30',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const check = await runCommand(SSHD, ['-t', '-f', config], 10_000);
  if (check.code !== 0) throw new Error(`sshd -t failed: ${check.stderr.trim()}`);
  const child = spawnTracked(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  // Ready once `ssh … true` works (bounded).
  for (let i = 0; i < 50; i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited ${child.exitCode}: ${stderr.trim()}`);
    const r = await runSshTrue(port, user, opts.clientKeyFile);
    if (r) break;
    if (i === 49) {
      child.kill('SIGKILL');
      throw new Error(`sshd did not answer on port ${port}: ${stderr.trim()}`);
    }
    await sleep(100);
  }
  return {
    pid: child.pid!,
    port,
    user,
    identityFile: opts.clientKeyFile,
    privateKey: opts.clientPrivateKey,
    stop: () => child.kill('SIGTERM'),
  };
}

async function runSshTrue(port: number, user: string, identity: string): Promise<boolean> {
  const r = await runSsh(sshArgs(port, user, CIPHERS[0], identity), 'true', 'ignore', 'pipe', 5_000);
  return r.code === 0;
}

// ---------------------------------------------------------------------------------------------
// /proc accounting for sshd (a process per connection, so: the listener and its descendants).

const CLK_TCK = 100;

function statFields(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm)"; comm may contain spaces and parentheses.
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * CPU ms of `pid` and of its children that exited and were reaped (utime+stime+cutime+cstime).
 * sshd reaps its per-connection processes, so after connections closed this includes them.
 */
export function treeCpuMs(pid: number): number | null {
  const f = statFields(pid);
  if (!f) return null;
  // After "(comm)": state=0 ppid=1 … utime=11 stime=12 cutime=13 cstime=14
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(f[i]), 0);
  return Number.isFinite(ticks) ? (ticks * 1000) / CLK_TCK : null;
}

/**
 * CPU ms of `pid` and its live descendants (utime+stime each), plus what reaped children used:
 * readable while a connection's sshd process still runs (a transfer over a master connection).
 */
export function liveTreeCpuMs(pid: number): number | null {
  let ticks = 0;
  for (const p of descendants(pid)) {
    const f = statFields(p);
    if (!f) continue;
    ticks += Number(f[11]) + Number(f[12]) + (p === pid ? Number(f[13]) + Number(f[14]) : 0);
  }
  return Number.isFinite(ticks) ? (ticks * 1000) / CLK_TCK : null;
}

/** `pid` and every live descendant. */
function descendants(pid: number): number[] {
  const childrenOf = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const f = statFields(Number(name));
    if (!f) continue;
    const ppid = Number(f[1]);
    const list = childrenOf.get(ppid) ?? [];
    list.push(Number(name));
    childrenOf.set(ppid, list);
  }
  const out = [pid];
  for (let i = 0; i < out.length && i < 100_000; i++) out.push(...(childrenOf.get(out[i]!) ?? []));
  return out;
}

/** Memory of the sshd tree in bytes: the sum of PSS (shared pages split), else of RSS. */
export function treeMemory(pid: number): { pss: number; rss: number; processes: number } | null {
  if (!statFields(pid)) return null;
  let pss = 0;
  let rss = 0;
  const pids = descendants(pid);
  for (const p of pids) {
    try {
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      pss += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
      rss += Number(/^Rss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
    } catch {
      // exited meanwhile
    }
  }
  return { pss, rss, processes: pids.length };
}
