/**
 * {@link runInPty} and {@link ptyHandler}: a real program (a login shell, vim, htop) in a real
 * pseudo-terminal per session, through the optional peer dependency `node-pty`.
 *
 * @module
 */
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { constants, userInfo } from 'node:os';
import { NoPtyError } from './errors.js';
import type { Handler } from './hooks.js';
import { importOptional } from './internal/optional.js';
import type { Session } from './session.js';
import { sessionEnv } from './terminal.js';
import type { MaybePromise, Signal, Window } from './types.js';

/** Options of {@link runInPty} and {@link ptyHandler}. */
export interface PtyProcessOptions {
  /** Working directory. Unset: the user's home directory (`os.userInfo().homedir`). */
  cwd?: string;
  /**
   * Variables set last, over the defaults. The defaults are what sshd gives a login: `PATH`,
   * `HOME`, `USER`, `LOGNAME`, `SHELL` (of the account the server runs as), `TERM` (the
   * client's), `SSH_CONNECTION`, `SSH_CLIENT`, plus the client's variables named by `acceptEnv`.
   * The server's own environment is not passed on (it may hold secrets).
   */
  env?: Record<string, string>;
  /**
   * Client variables (`env` requests) passed to the program, by name; a trailing `*` matches a
   * prefix (OpenSSH's `AcceptEnv`).
   * @defaultValue `["LANG", "LC_*", "COLORTERM", "NO_COLOR"]`
   */
  acceptEnv?: readonly string[];
  /**
   * Milliseconds between the `SIGHUP` sent when the client goes away and a `SIGKILL`, for
   * programs that ignore hangups.
   * @defaultValue `5000`
   */
  killTimeout?: number;
}

/** How a program in a pty ended. */
export interface PtyExit {
  /** Its exit status (`0` when a signal ended it). */
  exitCode: number;
  /** The signal that ended it, without `SIG` (e.g. `"TERM"`), or `undefined`. */
  signal: Signal | undefined;
}

/** The part of node-pty's `IPty` used here. */
interface PtyChild {
  readonly pid: number;
  /** The slave device, e.g. `/dev/pts/3` (Unix only). */
  readonly ptsName?: string;
  onData(listener: (data: Buffer | string) => void): unknown;
  onExit(listener: (e: { exitCode: number; signal?: number }) => void): unknown;
  write(data: Buffer | string): void;
  resize(columns: number, rows: number): void;
  kill(signal?: string): void;
  pause(): void;
  resume(): void;
}

interface NodePty {
  spawn(
    file: string,
    args: string[],
    options: { name: string; cols: number; rows: number; cwd: string; env: Record<string, string>; encoding: null },
  ): PtyChild;
}

let nodePty: Promise<NodePty> | undefined;

/** @internal Loads node-pty once; a missing install becomes `ERR_MISSING_DEPENDENCY`. */
export function loadNodePty(): Promise<NodePty> {
  nodePty ??= importOptional('node-pty', 'runInPty()', async () => {
    const mod = (await import('node-pty')) as unknown as Partial<NodePty> & { default?: NodePty };
    return typeof mod.spawn === 'function' ? (mod as NodePty) : mod.default!;
  }).catch((err: unknown) => {
    nodePty = undefined;
    throw err;
  });
  return nodePty;
}

const DEFAULT_ACCEPT_ENV = ['LANG', 'LC_*', 'COLORTERM', 'NO_COLOR'];

/** The environment a program in a pty starts with (see {@link PtyProcessOptions.env}). */
function childEnv(session: Session, options: PtyProcessOptions): Record<string, string> {
  const user = userInfo();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: user.homedir,
    USER: user.username,
    LOGNAME: user.username,
    SHELL: user.shell ?? '/bin/sh',
    TERM: session.pty?.term || 'xterm',
    SSH_CONNECTION: `${session.remoteAddress} ${session.remotePort} ${session.localAddress} ${session.localPort}`,
    SSH_CLIENT: `${session.remoteAddress} ${session.remotePort} ${session.localPort}`,
  };
  const accept = options.acceptEnv ?? DEFAULT_ACCEPT_ENV;
  const matches = (name: string): boolean =>
    accept.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
  for (const [name, value] of Object.entries(sessionEnv(session))) if (matches(name)) env[name] = value;
  return { ...env, ...options.env };
}

/** `15` → `"TERM"`. */
function signalName(n: number | undefined): Signal | undefined {
  if (!n) return undefined;
  for (const [name, num] of Object.entries(constants.signals)) if (num === n) return name.slice(3);
  return String(n);
}

/** Opens the pty's slave device without making it our controlling terminal; `undefined` if that fails. */
function holdOpen(path: string | undefined): number | undefined {
  if (!path) return undefined;
  try {
    return openSync(path, fsConstants.O_RDWR | fsConstants.O_NOCTTY | fsConstants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

/**
 * Runs `file` with `args` in a new pseudo-terminal wired to the session, and resolves when it
 * exits; the session stays open (see {@link ptyHandler} to exit with the program's status).
 *
 * - The pty gets the client's `TERM` and window size and follows its window changes.
 * - Keystrokes go to the pty, so the kernel's line discipline does echo, line editing, job
 *   control and `^C` → `SIGINT`; `signal` requests from the client are sent to the program.
 * - Output goes to the client untouched (the session's `\n`→`\r\n` is off meanwhile); when the
 *   client is slow the pty is paused, so a program writing fast waits instead of filling memory.
 * - When the client goes away the program gets `SIGHUP`, then `SIGKILL` after `killTimeout`.
 *
 * Needs the optional peer dependency `node-pty` (`npm install node-pty`); without it this
 * rejects with `MissingDependencyError` (`ERR_MISSING_DEPENDENCY`). Without a pty on the
 * session it rejects with `NoPtyError` (`ERR_NO_PTY`).
 *
 * @example
 * ```ts
 * server.handle(async (session) => {
 *   const { exitCode } = await runInPty(session, 'htop');
 *   session.write(`htop exited with ${exitCode}\n`);
 * });
 * ```
 */
export async function runInPty(session: Session, file: string, args: string[] = [], options: PtyProcessOptions = {}): Promise<PtyExit> {
  const pty = session.pty;
  if (!pty) throw new NoPtyError();
  const lib = await loadNodePty();
  if (session.signal.aborted) return { exitCode: 0, signal: 'HUP' };
  const child = lib.spawn(file, args, {
    name: pty.term || 'xterm',
    cols: pty.window.width || 80,
    rows: pty.window.height || 24,
    cwd: options.cwd ?? userInfo().homedir,
    env: childEnv(session, options),
    encoding: null,
  });
  // As sshd does, hold the slave side open until the program has exited: when its last process
  // closes the slave, Linux may drop output the master has not read yet.
  const slave = holdOpen(child.ptsName);
  const translate = session.translateNewlines;
  session.translateNewlines = false;
  let paused = false;
  let exited = false;
  let killTimer: NodeJS.Timeout | undefined;
  let watch: NodeJS.Timeout | undefined;
  let gone = false;
  const attempt = (fn: () => void): void => {
    try {
      if (!exited) fn();
    } catch {
      // The pty is closing; there is nothing left to tell it.
    }
  };
  const onInput = (data: Buffer): void => attempt(() => child.write(data));
  const onWindow = (w: Window): void => attempt(() => child.resize(w.width, w.height));
  const onSignal = (name: Signal): void => {
    const sig = `SIG${name}`;
    if (sig in constants.signals) attempt(() => child.kill(sig));
  };
  const onDrain = (): void => {
    paused = false;
    clearInterval(watch);
    session.off('drain', onDrain);
    attempt(() => child.resume());
  };
  // node-pty drops what is still unread 200 ms after the program exits; while paused, watch for
  // the exit and read the rest (at most the kernel's pty buffer) rather than lose it.
  const watchExit = (): void => {
    watch = setInterval(() => {
      try {
        process.kill(child.pid, 0);
      } catch {
        gone = true; // what is left is bounded by the kernel's buffer: read it all now
        onDrain();
      }
    }, 50);
    watch.unref();
  };
  const onAbort = (): void => {
    if (paused) onDrain();
    attempt(() => child.kill('SIGHUP'));
    killTimer = setTimeout(() => attempt(() => child.kill('SIGKILL')), options.killTimeout ?? 5000);
    killTimer.unref();
  };
  child.onData((data) => {
    if (session.write(data) || paused || gone || session.signal.aborted) return;
    paused = true;
    child.pause();
    session.once('drain', onDrain);
    watchExit();
  });
  session.on('data', onInput);
  session.on('window-change', onWindow);
  session.on('signal', onSignal);
  session.signal.addEventListener('abort', onAbort, { once: true });
  return new Promise<PtyExit>((resolve) => {
    child.onExit(({ exitCode, signal }) => {
      exited = true;
      clearTimeout(killTimer);
      clearInterval(watch);
      if (slave !== undefined) closeSync(slave);
      session.off('data', onInput);
      session.off('window-change', onWindow);
      session.off('signal', onSignal);
      session.off('drain', onDrain);
      session.signal.removeEventListener('abort', onAbort);
      session.translateNewlines = translate;
      resolve({ exitCode, signal: signalName(signal) });
    });
  });
}

/**
 * A handler that runs a program in a pty per session (see {@link runInPty}) and ends the
 * session with its exit status, or with `exit-signal` when a signal killed it, so
 * `ssh host; echo $?` shows the program's status. A session without a pty gets "Requires an
 * active PTY" on stderr and exit status 1.
 *
 * @param file - The program.
 * @param args - Its arguments, or a function that picks them per session (from
 *   `session.command`, say).
 * @example
 * ```ts
 * // A login shell for each user; `ssh -t host cmd` runs cmd through the shell instead.
 * server.handle(ptyHandler('/bin/bash', (s) => (s.rawCommand ? ['-c', s.rawCommand] : ['-l'])));
 * ```
 */
export function ptyHandler(
  file: string,
  args: string[] | ((session: Session) => MaybePromise<string[]>) = [],
  options: PtyProcessOptions = {},
): Handler {
  return async (session) => {
    if (!session.pty) {
      session.stderr.write('Requires an active PTY\n');
      await session.exit(1);
      return;
    }
    const argv = typeof args === 'function' ? await args(session) : args;
    const result = await runInPty(session, file, argv, options);
    if (session.signal.aborted) return;
    if (result.signal) await session.exitSignal(result.signal);
    else await session.exit(result.exitCode);
  };
}
