/**
 * {@link createTerminal}: a session's pty as the stdin/stdout/stderr streams TUI frameworks
 * (Ink, blessed/neo-blessed, `@inquirer/prompts`, Node's `readline`) expect from a real TTY.
 *
 * @module
 */
import { clearLine, clearScreenDown, cursorTo, moveCursor, type Direction } from 'node:readline';
import { finished, Readable, Writable } from 'node:stream';
import { colorLevel, DEPTH, type ColorLevel } from './color.js';
import { NoPtyError } from './errors.js';
import type { Session } from './session.js';
import type { Window } from './types.js';

/**
 * The environment a client sent (`env` requests), as an object; a later value for a name wins.
 *
 * @example
 * ```ts
 * const env = sessionEnv(session); // { LANG: 'en_US.UTF-8', COLORTERM: 'truecolor' }
 * ```
 */
export function sessionEnv(session: Pick<Session, 'environ'>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of session.environ) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/**
 * A terminal's input: the client's keystrokes as a Readable with what a `tty.ReadStream` has
 * (`isTTY`, `isRaw`, `setRawMode`, `ref`, `unref`). There is no line discipline on the server:
 * the client's terminal is in raw mode, so bytes arrive as typed in both modes, and echo or
 * line editing is the application's (readline, Ink and blessed do their own).
 *
 * @example
 * ```ts
 * const { stdin } = createTerminal(session);
 * stdin.setRawMode(true);
 * stdin.on('data', (key) => { if (key.toString() === 'q') session.end(); });
 * ```
 */
export class TerminalInput extends Readable {
  /** Always `true`: this stream is a terminal. */
  readonly isTTY = true;
  /** The last mode given to `setRawMode()`; it changes nothing on the wire (see the class notes). */
  isRaw = false;
  private readonly pull: () => void;

  /** @internal Made by {@link createTerminal}. */
  constructor(pull: () => void) {
    super();
    this.pull = pull;
  }

  /** Records raw mode, as `tty.ReadStream.setRawMode()` does; returns the stream. */
  setRawMode(mode: boolean): this {
    this.isRaw = mode;
    return this;
  }

  /** Does nothing (a session never keeps the process alive by itself); for Ink. */
  ref(): this {
    return this;
  }

  /** Does nothing; for Ink. */
  unref(): this {
    return this;
  }

  /** @internal */
  override _read(): void {
    this.pull();
  }
}

/**
 * A terminal's output (stdout or stderr): a Writable over the session with what a
 * `tty.WriteStream` has: `isTTY`, `columns` and `rows` kept current, a `'resize'` event per
 * window change, `getWindowSize()`, `getColorDepth()`, `hasColors()` and the cursor helpers.
 * Writes wait for the session's flow control, so `write()` returning `false` means the client
 * is slow; wait for `'drain'`.
 *
 * @example
 * ```ts
 * const { stdout } = createTerminal(session);
 * stdout.on('resize', () => stdout.write(`now ${stdout.columns}x${stdout.rows}\n`));
 * ```
 */
export class TerminalOutput extends Writable {
  /** Always `true`: this stream is a terminal. */
  readonly isTTY = true;
  /** Width in columns, kept current. */
  columns: number;
  /** Height in rows, kept current. */
  rows: number;
  private readonly target: Writable;
  private readonly level: () => ColorLevel;
  private readonly termName: string;
  private detached = false;

  /** @internal Made by {@link createTerminal}. */
  constructor(target: Writable, window: Window, termName: string, level: () => ColorLevel) {
    super({ decodeStrings: true });
    this.target = target;
    this.columns = window.width || 80;
    this.rows = window.height || 24;
    this.termName = termName;
    this.level = level;
    // As process.stdout: a legacy pipe into a terminal does not end it when its source ends
    // (@inquirer/prompts pipes each prompt's output through a MuteStream that ends).
    (this as { _isStdio?: boolean })._isStdio = true;
  }

  /** `[columns, rows]`, as `tty.WriteStream.getWindowSize()`. */
  getWindowSize(): [number, number] {
    return [this.columns, this.rows];
  }

  /**
   * Bits of color: 1, 4, 8 or 24, from the client's terminal (see {@link colorLevel}); with
   * `env`, computed from that environment instead (its `TERM`, else the session's).
   */
  getColorDepth(env?: Readonly<Record<string, string | undefined>>): number {
    return DEPTH[env ? colorLevel(env.TERM ?? this.termName, env) : this.level()];
  }

  /** Whether the terminal shows at least `count` colors (default 16). */
  hasColors(count?: number | Readonly<Record<string, string | undefined>>, env?: Readonly<Record<string, string | undefined>>): boolean {
    if (typeof count === 'object') return this.hasColors(16, count);
    return (count ?? 16) <= 2 ** this.getColorDepth(env);
  }

  /** Clears the current line left of the cursor (`-1`), right of it (`1`) or all of it (`0`). */
  clearLine(dir: Direction, callback?: () => void): boolean {
    return clearLine(this, dir, callback);
  }

  /** Clears from the cursor to the end of the screen. */
  clearScreenDown(callback?: () => void): boolean {
    return clearScreenDown(this, callback);
  }

  /** Moves the cursor to column `x` (and row `y`, when given). */
  cursorTo(x: number, y?: number | (() => void), callback?: () => void): boolean {
    return typeof y === 'function' ? cursorTo(this, x, undefined, y) : cursorTo(this, x, y, callback);
  }

  /** Moves the cursor by `dx` columns and `dy` rows. */
  moveCursor(dx: number, dy: number, callback?: () => void): boolean {
    return moveCursor(this, dx, dy, callback);
  }

  /**
   * Writes to the client. Once the terminal is closed, writes are dropped (the callback still
   * runs) instead of raising an error.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | ((err?: Error | null) => void), cb?: (err?: Error | null) => void): boolean {
    if (this.detached) {
      const done = typeof encoding === 'function' ? encoding : cb;
      if (done) process.nextTick(done);
      return false;
    }
    return super.write(chunk, encoding as BufferEncoding, cb);
  }

  /** @internal Stops taking writes: flushes what is queued (`graceful`), or drops it. */
  detach(graceful: boolean): void {
    if (this.detached) return;
    this.detached = true;
    if (graceful) this.end();
    else this.destroy();
  }

  /** @internal Sets the size and emits `'resize'` when it changed. */
  resize(w: Window): void {
    if (w.width === this.columns && w.height === this.rows) return;
    this.columns = w.width;
    this.rows = w.height;
    this.emit('resize');
  }

  /**
   * @internal Hands the chunk to the session at once (so nothing waits here when the session
   * ends), and holds the next one while the session's buffer is over its high-water mark.
   */
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const target = this.target;
    if (target.write(chunk) || !target.writableNeedDrain || target.destroyed) return cb();
    const done = (): void => {
      target.off('drain', done);
      target.off('close', done);
      cb();
    };
    target.on('drain', done);
    target.on('close', done);
  }

  /** @internal */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this._write(Buffer.concat(chunks.map((c) => c.chunk)), 'binary', cb);
  }

  /** @internal Ending the terminal's output leaves the session open. */
  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }
}

/** Options of {@link createTerminal}. */
export interface TerminalOptions {
  /** Overrides the detected color level. Unset: from `TERM` and the client's env ({@link colorLevel}). */
  colorLevel?: ColorLevel;
}

/**
 * One session's terminal: {@link TerminalInput} and two {@link TerminalOutput}s, sized from the
 * session's pty and following its window changes. Everything is per session: two clients with
 * different sizes and colors each see their own.
 *
 * It closes itself when the session closes; `close()` (or `using`) ends it earlier and removes
 * every listener it put on the session (which is left paused).
 *
 * @example
 * ```ts
 * server.handle(async (session) => {
 *   await using term = createTerminal(session);
 *   const rl = readline.createInterface({ input: term.stdin, output: term.stdout, terminal: true });
 *   const name = await rl.question('name? ');
 *   term.stdout.write(`hello ${name}, your terminal is ${term.stdout.columns} wide\n`);
 *   rl.close();
 * });
 * ```
 */
export class Terminal implements Disposable, AsyncDisposable {
  /** The client's keystrokes. */
  readonly stdin: TerminalInput;
  /** Output to the client's screen. */
  readonly stdout: TerminalOutput;
  /** Output on the session's stderr (the same screen under a pty). */
  readonly stderr: TerminalOutput;
  /** The client's `TERM`, e.g. `"xterm-256color"`. */
  readonly term: string;
  /** The environment the client sent (`env` requests). */
  readonly env: Readonly<Record<string, string>>;
  /** How many colors the client's terminal shows. */
  readonly colorLevel: ColorLevel;
  private readonly session: Session;
  private isClosed = false;
  private readonly onData: (chunk: Buffer) => void;
  private readonly onEnd: () => void;
  private readonly onWindow: (w: Window) => void;
  private readonly onAbort: () => void;

  /** @internal Use {@link createTerminal}. */
  constructor(session: Session, options: TerminalOptions = {}) {
    const pty = session.pty;
    if (!pty) throw new NoPtyError();
    this.session = session;
    this.term = pty.term;
    this.env = sessionEnv(session);
    this.colorLevel = options.colorLevel ?? colorLevel(pty.term, this.env);
    const level = (): ColorLevel => this.colorLevel;
    this.stdin = new TerminalInput(() => session.resume());
    this.stdout = new TerminalOutput(session, pty.window, pty.term, level);
    this.stderr = new TerminalOutput(session.stderr, pty.window, pty.term, level);
    this.onData = (chunk) => {
      if (!this.stdin.push(chunk)) session.pause();
    };
    this.onEnd = () => this.stdin.push(null);
    this.onWindow = (w) => {
      this.stdout.resize(w);
      this.stderr.resize(w);
    };
    this.onAbort = () => void this.close();
    // Paused first, so that the 'data' listener does not start the flow before stdin is read.
    session.pause();
    session.on('data', this.onData);
    session.once('end', this.onEnd);
    session.on('window-change', this.onWindow);
    if (session.signal.aborted) void this.close();
    else session.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Whether the terminal was closed (by `close()` or because the session closed). */
  get closed(): boolean {
    return this.isClosed;
  }

  /**
   * Detaches from the session: removes every listener this terminal added, ends `stdin`, and
   * ends `stdout`/`stderr` once what they hold is handed to the session (discarded if the
   * session is gone); later writes are dropped. Resolves when that is done; idempotent.
   */
  close(): Promise<void> {
    const flushed = Promise.all([this.stdout, this.stderr].map(whenDone));
    if (this.isClosed) return flushed.then(() => undefined);
    this.isClosed = true;
    const s = this.session;
    s.off('data', this.onData);
    s.off('end', this.onEnd);
    s.off('window-change', this.onWindow);
    s.signal.removeEventListener('abort', this.onAbort);
    this.stdin.push(null);
    const open = !s.signal.aborted;
    this.stdout.detach(open);
    this.stderr.detach(open);
    return flushed.then(() => undefined);
  }

  /** Same as `close()` without waiting, for `using term = createTerminal(session)`. */
  [Symbol.dispose](): void {
    void this.close();
  }

  /** Same as `close()`, for `await using term = createTerminal(session)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Makes the session's pty a terminal for TUI frameworks: `stdin`, `stdout` and `stderr`
 * streams that pass as a real TTY (see {@link Terminal}). Throws `NoPtyError`
 * (`ERR_NO_PTY`) when the client did not ask for a pty; put `activeTerm()` in front to refuse
 * such sessions with a message.
 *
 * What frameworks get: Ink (`render(app, { stdin, stdout, stderr, patchConsole: false })`,
 * or use `glidessh/ink`), blessed/neo-blessed (`blessed.screen({ input: stdin, output: stdout,
 * terminal: term.term })`), `@inquirer/prompts` (`input({ message }, { input: stdin, output:
 * stdout })`) and Node's `readline` (`terminal: true`).
 *
 * @example
 * ```ts
 * import { select } from '@inquirer/prompts';
 *
 * server.handle(async (session) => {
 *   await using term = createTerminal(session);
 *   const flavor = await select(
 *     { message: 'Pick one', choices: ['vanilla', 'chocolate'] },
 *     { input: term.stdin, output: term.stdout },
 *   );
 *   term.stdout.write(`enjoy your ${flavor}\n`);
 * });
 * ```
 */
export function createTerminal(session: Session, options?: TerminalOptions): Terminal {
  return new Terminal(session, options);
}

/** Resolves once `stream` finished or was destroyed, and removes the listeners that took. */
function whenDone(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const stop = finished(stream, () => {
      stop();
      resolve();
    });
  });
}
