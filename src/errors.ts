/**
 * Errors thrown or reported by glidessh. Every one is a {@link GlidesshError} with a stable
 * string `code`; `docs/errors.md` has a row per code (checked by a test).
 *
 * @module
 */

const brand = Symbol.for('glidessh.error');

/**
 * Base class of every error glidessh throws or reports.
 *
 * `instanceof GlidesshError` works across duplicate installs of the package (the class is
 * branded with `Symbol.for`), so a check in user code does not depend on module identity.
 *
 * @example
 * ```ts
 * try { await server.listen(2222) } catch (err) {
 *   if (err instanceof GlidesshError && err.code === 'ERR_SERVER_CLOSED') { ... }
 * }
 * ```
 */
export class GlidesshError extends Error {
  /** Stable machine-readable code, `ERR_…`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** @internal */
  get [brand](): true {
    return true;
  }

  /** @internal */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== GlidesshError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

/** A server option has a wrong type or value; `option` names it. Code `ERR_INVALID_OPTION`. */
export class InvalidOptionError extends GlidesshError {
  /** The name of the offending option, e.g. `"maxAuthTries"`. */
  readonly option: string;
  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_OPTION', `Invalid option "${option}": ${message}`, options);
    this.option = option;
  }
}

/** `listen()` or `serve()` after `close()`/`shutdown()`. Code `ERR_SERVER_CLOSED`. */
export class ServerClosedError extends GlidesshError {
  constructor() {
    super('ERR_SERVER_CLOSED', 'The server is closed');
  }
}

/** `exit()`/`exitSignal()` called on a session that already exited. Code `ERR_SESSION_EXITED`. */
export class SessionExitedError extends GlidesshError {
  constructor() {
    super('ERR_SESSION_EXITED', 'The session has already exited');
  }
}

/** A request was made on a channel that is already closed. Code `ERR_CHANNEL_CLOSED`. */
export class ChannelClosedError extends GlidesshError {
  constructor() {
    super('ERR_CHANNEL_CLOSED', 'The channel is closed');
  }
}

/** A key could not be parsed or is of an unsupported type. Code `ERR_KEY_PARSE`. */
export class KeyParseError extends GlidesshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_KEY_PARSE', message, options);
  }
}

/** Why a connection was cut by a timer. */
export type TimeoutKind = 'handshake' | 'idle' | 'max' | 'keepalive';

/**
 * A connection was closed by `handshakeTimeout`, `idleTimeout` or `maxTimeout`; `ctx.signal.reason`
 * holds it. Code `ERR_TIMEOUT`.
 */
export class TimeoutError extends GlidesshError {
  /** Which timer fired. */
  readonly kind: TimeoutKind;
  constructor(kind: TimeoutKind, ms: number) {
    super('ERR_TIMEOUT', `Connection closed: ${kind} timeout of ${ms} ms`);
    this.kind = kind;
  }
}

/**
 * A connection was refused at accept time by a limit (`maxConnections`, `maxStartups`,
 * `perSourceMaxStartups`) or a penalty box; `reason` says which. Reported to
 * `connectionFailedCallback`. Code `ERR_CONNECTION_REFUSED`.
 */
export class ConnectionRefusedError extends GlidesshError {
  /** The limit that refused it. */
  readonly reason: string;
  constructor(reason: string) {
    super('ERR_CONNECTION_REFUSED', `Connection refused: ${reason}`);
    this.reason = reason;
  }
}

/** The client does not use strict key exchange and `requireStrictKex` is set. Code `ERR_STRICT_KEX`. */
export class StrictKexRequiredError extends GlidesshError {
  constructor() {
    super('ERR_STRICT_KEX', 'The client did not negotiate strict key exchange (Terrapin countermeasure)');
  }
}

/** The client failed authentication `maxAuthTries` times. Code `ERR_AUTH_TRIES`. */
export class AuthTriesExceededError extends GlidesshError {
  constructor(tries: number) {
    super('ERR_AUTH_TRIES', `Too many authentication failures (${tries})`);
  }
}

/**
 * A user hook or handler threw, rejected or returned a wrong value. The original error is
 * `cause`; reported on the server's `'error'` event. Code `ERR_HOOK`.
 */
export class HookError extends GlidesshError {
  /** The hook's option name, e.g. `"passwordHandler"`. */
  readonly hook: string;
  constructor(hook: string, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super('ERR_HOOK', `${hook} failed: ${detail}`, { cause });
    this.hook = hook;
  }
}

/** The connection closed (or the server shut down) before the operation finished. Code `ERR_CONNECTION_CLOSED`. */
export class ConnectionClosedError extends GlidesshError {
  constructor(message = 'The connection is closed') {
    super('ERR_CONNECTION_CLOSED', message);
  }
}

/**
 * A forwarding helper failed: `newAgentListener()` could not create its socket, or a
 * forwarding listener could not accept (reported on `'error'`); the original error is `cause`.
 * Code `ERR_FORWARDING`.
 */
export class ForwardingError extends GlidesshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_FORWARDING', message, options);
  }
}

/**
 * An optional peer dependency a feature needs is not installed: `node-pty` for `runInPty` and
 * `ptyHandler`, `ink` for `glidessh/ink`. The message says what to install. Code
 * `ERR_MISSING_DEPENDENCY`.
 *
 * @example
 * ```ts
 * try { await runInPty(session, 'bash') } catch (err) {
 *   if (err instanceof GlidesshError && err.code === 'ERR_MISSING_DEPENDENCY') console.error(err.message);
 * }
 * ```
 */
export class MissingDependencyError extends GlidesshError {
  /** The npm package that is missing, e.g. `"node-pty"`. */
  readonly dependency: string;
  constructor(dependency: string, feature: string, options?: { cause?: unknown }) {
    super(
      'ERR_MISSING_DEPENDENCY',
      `${feature} needs the optional package "${dependency}", which is not installed: run \`npm install ${dependency}\``,
      options,
    );
    this.dependency = dependency;
  }
}

/**
 * A terminal feature (`createTerminal`, `inkHandler`, `runInPty`) was used on a session without
 * a pty; the client must ask for one (`ssh -t`). Code `ERR_NO_PTY`.
 *
 * @example
 * ```ts
 * server.use(activeTerm()); // refuses such sessions politely before the handler runs
 * ```
 */
export class NoPtyError extends GlidesshError {
  constructor(message = 'The session has no pty (connect with ssh -t)') {
    super('ERR_NO_PTY', message);
  }
}

/** Every error code glidessh uses, for documentation and tests. */
export const ERROR_CODES = [
  'ERR_INVALID_OPTION',
  'ERR_SERVER_CLOSED',
  'ERR_SESSION_EXITED',
  'ERR_CHANNEL_CLOSED',
  'ERR_KEY_PARSE',
  'ERR_TIMEOUT',
  'ERR_AUTH_TRIES',
  'ERR_HOOK',
  'ERR_CONNECTION_CLOSED',
  'ERR_CONNECTION_DROPPED',
  'ERR_CONNECTION_REFUSED',
  'ERR_STRICT_KEX',
  'ERR_FORWARDING',
  'ERR_PROXY_PROTOCOL',
  'ERR_MISSING_DEPENDENCY',
  'ERR_NO_PTY',
  'ERR_SFTP_STATUS',
] as const;
