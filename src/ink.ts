/**
 * `glidessh/ink`: an [Ink](https://github.com/vadimdemedes/ink) app per SSH session, the Node
 * counterpart of wish's bubbletea middleware. `ink` and `react` are optional peer
 * dependencies: this module loads Ink on first use, so the main `glidessh` import never needs
 * them (`npm install ink react` to use this one). ESM only, as Ink is.
 *
 * @example
 * ```tsx
 * import { Text } from 'ink';
 * import { Server, activeTerm } from 'glidessh';
 * import { inkHandler } from 'glidessh/ink';
 *
 * const server = new Server();
 * server.use(activeTerm());
 * server.handle(inkHandler((session, term) => <Text>Hello {session.user}, {term.stdout.columns} columns</Text>));
 * await server.listen(2222);
 * ```
 * @module glidessh/ink
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Instance, RenderOptions } from 'ink';
import type { ReactNode } from 'react';
import type { Handler } from './hooks.js';
import { importOptional } from './internal/optional.js';
import type { Session } from './session.js';
import type { ColorLevel } from './color.js';
import { createTerminal, type Terminal } from './terminal.js';
import type { MaybePromise } from './types.js';

/** The `ink` module, as `import('ink')` gives it. */
export type InkModule = typeof import('ink');

/** Makes the React element of one session's app; it gets the session and its terminal. */
export type InkApp = (session: Session, terminal: Terminal) => MaybePromise<ReactNode>;

/** Options of {@link inkHandler} and {@link runInk}. */
export interface InkHandlerOptions {
  /**
   * Whether `^C` unmounts the app (which ends the session). `false`: the app gets `^C` as
   * input (`useInput`), e.g. to ask "quit?".
   * @defaultValue `true`
   */
  exitOnCtrlC?: boolean;
  /** Overrides the color level detected from the client's `TERM` and env. */
  colorLevel?: ColorLevel;
  /**
   * More Ink render options (`maxFps`, `incrementalRendering`, …). The streams,
   * `patchConsole: false` and `interactive: true` are glidessh's and cannot be overridden.
   */
  renderOptions?: Omit<RenderOptions, 'stdin' | 'stdout' | 'stderr' | 'patchConsole' | 'exitOnCtrlC' | 'debug'>;
}

let ink: Promise<InkModule> | undefined;
let warned = false;

/**
 * Imports Ink once and returns it. Use it instead of a static `import … from 'ink'` in a
 * server that may run with a `CI` environment variable set: Ink before version 7 reads `CI`
 * once, when it is first imported, and then renders only the final frame; loaded through here,
 * Ink ignores the server's `CI` (`CI` is hidden from it during that import; the variable is
 * back as soon as it finished). Ink 7 and later get `interactive: true` instead. Rejects with
 * `MissingDependencyError` (`ERR_MISSING_DEPENDENCY`) when `ink` is not installed.
 *
 * @example
 * ```tsx
 * const { Box, Text, useInput } = await loadInk();
 * ```
 */
export function loadInk(): Promise<InkModule> {
  ink ??= importOptional('ink', 'glidessh/ink', async () => {
    const isInCi = await primeIsInCi();
    const mod = (await import('ink')) as InkModule;
    if (isInCi && ((await import(isInCi)) as { default?: unknown }).default === true) warnNonInteractive();
    return mod;
  }).catch((err: unknown) => {
    ink = undefined;
    throw err;
  });
  return ink;
}

/** Names of the variables Ink (through `is-in-ci`) takes as "running in CI". */
const CI_VARS = ['CI', 'CONTINUOUS_INTEGRATION'] as const;

/**
 * Evaluates Ink's `is-in-ci` with the CI variables hidden (Ink < 7 reads them once, at import)
 * and returns its URL, or `undefined` when Ink does not use it or it cannot be found.
 */
async function primeIsInCi(): Promise<string | undefined> {
  let url: string;
  let major: number;
  try {
    const entry = fileURLToPath(import.meta.resolve('ink'));
    url = pathToFileURL(createRequire(entry).resolve('is-in-ci')).href;
    const pkg = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version?: string };
    major = Number.parseInt(pkg.version ?? '0', 10);
  } catch {
    return undefined;
  }
  if (major >= 7) return undefined; // `interactive: true` does it
  const saved = CI_VARS.map((name) => [name, process.env[name]] as const);
  if (saved.every(([, v]) => v === undefined)) return url;
  for (const [name] of saved) delete process.env[name];
  try {
    await import(url);
  } finally {
    for (const [name, value] of saved) if (value !== undefined) process.env[name] = value;
  }
  return url;
}

function warnNonInteractive(): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    'Ink was imported while CI was set, so it renders only the final frame of each session. ' +
      'Load Ink with loadInk() from glidessh/ink before anything imports it, or use Ink 7 or later.',
    { code: 'GLIDESSH_INK_NON_INTERACTIVE' },
  );
}

/**
 * Renders `app` on the session's terminal with Ink and resolves once it is unmounted: when
 * the app calls `useApp().exit()` (rejects if given an error), on `^C` (unless `exitOnCtrlC`
 * is false), or when the client goes away (then the app is unmounted at once and nothing is
 * left behind: no timers, no listeners on the session or the process). The session stays
 * open; {@link inkHandler} is the handler that then ends it.
 *
 * One Ink instance per session, with `patchConsole: false` (console is global; sessions must
 * not capture each other's logs), `interactive: true`, and the session's own size, resize
 * events and color level. Throws `NoPtyError` without a pty.
 *
 * @example
 * ```tsx
 * server.handle(async (session) => {
 *   await runInk(session, () => <Menu />);
 *   session.write('bye\n');
 * });
 * ```
 */
export async function runInk(session: Session, app: InkApp, options: InkHandlerOptions = {}): Promise<void> {
  const { render } = await loadInk();
  const terminal = createTerminal(session, options.colorLevel === undefined ? {} : { colorLevel: options.colorLevel });
  let instance: Instance | undefined;
  const onAbort = (): void => instance?.unmount();
  // Ink reads keys (and handles ^C) only while a component uses useInput (raw mode). Otherwise,
  // as a terminal in cooked mode would interrupt the program, ^C unmounts the app.
  const exitOnCtrlC = options.exitOnCtrlC ?? true;
  const onData = (chunk: Buffer): void => {
    if (exitOnCtrlC && !terminal.stdin.isRaw && chunk.includes(3)) instance?.unmount();
  };
  try {
    const node = await app(session, terminal);
    if (terminal.closed) return;
    const renderOptions = {
      ...options.renderOptions,
      stdin: terminal.stdin as unknown as NodeJS.ReadStream,
      stdout: terminal.stdout as unknown as NodeJS.WriteStream,
      stderr: terminal.stderr as unknown as NodeJS.WriteStream,
      debug: false,
      patchConsole: false,
      exitOnCtrlC,
      interactive: true,
    };
    instance = render(node, renderOptions as RenderOptions);
    session.signal.addEventListener('abort', onAbort, { once: true });
    session.on('data', onData);
    terminal.stdin.read(0); // keep keys flowing (buffered) even while Ink does not read them
    await untilExit(instance);
  } finally {
    session.signal.removeEventListener('abort', onAbort);
    session.off('data', onData);
    instance?.unmount();
    instance?.cleanup();
    // What the app wrote last reaches the session before the handler goes on (and exits).
    await terminal.close();
  }
}

/**
 * `instance.waitUntilExit()` without the `process.once('beforeExit')` Ink adds for it: that
 * would unmount on an idle process (never the case for a server) and, one per session, trips
 * the MaxListeners warning past ten sessions.
 */
function untilExit(instance: Instance): Promise<unknown> {
  const before = new Set(process.listeners('beforeExit'));
  const exited = instance.waitUntilExit();
  for (const l of process.listeners('beforeExit')) if (!before.has(l)) process.off('beforeExit', l);
  return exited;
}

/**
 * A handler that runs an Ink app per session (see {@link runInk}) and ends the session when
 * the app exits: status 0, or 1 when it exited with an error. A session without a pty gets
 * "Requires an active PTY" on stderr and status 1.
 *
 * What Ink needs from a stream, and this provides: stdin with `isTTY`, `setRawMode`, `ref`,
 * `unref`; stdout with `isTTY`, `columns`, `rows` and `'resize'`; plus `patchConsole: false`.
 * Ink's `<Text color>` uses chalk's process-wide color level; the client's own level is
 * `terminal.colorLevel` (pass it to your components to pick colors per user).
 *
 * @example
 * ```tsx
 * server.handle(inkHandler((session, term) => <Game user={session.user} colors={term.colorLevel} />));
 * ```
 */
export function inkHandler(app: InkApp, options: InkHandlerOptions = {}): Handler {
  return async (session) => {
    if (!session.pty) {
      session.stderr.write('Requires an active PTY\n');
      await session.exit(1);
      return;
    }
    await runInk(session, app, options);
  };
}
