/**
 * Every process the benchmark starts goes through here, so that all of them are stopped at
 * the end, on error and on SIGINT/SIGTERM.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { sleep } from './util.js';

const children = new Set<ChildProcess>();
const cleanups: Array<() => void | Promise<void>> = [];
const tmpDirs: string[] = [];

/** Starts a process and remembers it until it exits. */
export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, opts);
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
  return child;
}

/** Runs `fn` during cleanup (before the processes are stopped). */
export function onCleanup(fn: () => void | Promise<void>): void {
  cleanups.push(fn);
}

/** Removes `dir` (recursively) during cleanup. */
export function removeOnCleanup(dir: string): void {
  tmpDirs.push(dir);
}

function alive(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

let cleaning: Promise<void> | undefined;

/** Whether cleanup started (after which failures of measurements are expected). */
export function stopping(): boolean {
  return cleaning !== undefined;
}

/** Runs the cleanup hooks, stops every child (SIGTERM, SIGKILL after 2 s), removes temp dirs. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        // Best effort: the processes below must be stopped whatever happened here.
      }
    }
    for (const c of children) {
      if (!alive(c)) continue;
      try {
        c.kill('SIGTERM');
      } catch {
        // already gone
      }
    }
    for (let i = 0; i < 40 && [...children].some(alive); i++) await sleep(50);
    for (const c of children) if (alive(c)) c.kill('SIGKILL');
    for (let i = 0; i < 20 && [...children].some(alive); i++) await sleep(50);
    for (const dir of tmpDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}

/** Last resort when the process exits without `cleanup()`: SIGKILL what is left. */
function killNow(): void {
  for (const c of children) {
    if (alive(c)) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const dir of tmpDirs.splice(0)) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // nothing more to do at exit
    }
  }
}

/** Installs SIGINT/SIGTERM/uncaught handlers that clean up and exit. */
export function installSignalHandlers(): void {
  const bail = (code: number, why: string) => {
    process.stderr.write(`\nbench: ${why}, stopping what was started…\n`);
    void cleanup().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => bail(130, 'SIGINT'));
  process.once('SIGTERM', () => bail(143, 'SIGTERM'));
  process.once('SIGHUP', () => bail(129, 'SIGHUP'));
  process.on('uncaughtException', (err) => bail(1, `uncaught exception: ${err.stack ?? err}`));
  process.on('unhandledRejection', (err) => bail(1, `unhandled rejection: ${(err as Error)?.stack ?? err}`));
  process.on('exit', killNow);
}

/**
 * Waits for a line matching `re` on the child's stdout (e.g. `PORT 1234`); rejects if the
 * child exits first or `ms` pass. Later stdout is drained and dropped.
 */
export function waitForLine(child: ChildProcess, re: RegExp, ms: number, name: string): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    if (!child.stdout) return reject(new Error(`${name}: no stdout`));
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString();
    });
    const rl = createInterface({ input: child.stdout });
    const timer = setTimeout(() => finish(new Error(`${name}: no "${re.source}" within ${ms} ms\n${stderr}`)), ms);
    const onExit = (code: number | null, sig: string | null) =>
      finish(new Error(`${name} exited (${code ?? sig}) before it was ready\n${stderr}`));
    child.once('exit', onExit);
    let done = false;
    function finish(err: Error | null, m?: RegExpMatchArray): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    }
    rl.on('line', (line) => {
      const m = line.match(re);
      if (m) finish(null, m);
    });
  });
}

/** Runs a command to completion (bounded by `ms`); resolves with its exit code and output. */
export function runCommand(
  cmd: string,
  args: string[],
  ms: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawnTracked(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      if (stdout.length < 65536) stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 65536) stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: String(err) });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
