/**
 * {@link logging}: one line when a session starts and one when it ends.
 *
 * @module
 */
import type { Middleware } from '../hooks.js';
import type { Session } from '../session.js';

/**
 * What {@link logging} needs from a logger: `info` and `error`. pino, bunyan, winston's
 * child loggers and `console` all fit.
 */
export interface Logger {
  /** Logs at info level. */
  info(...args: unknown[]): void;
  /** Logs at error level. */
  error(...args: unknown[]): void;
}

/** Options of {@link logging}. */
export interface LoggingOptions {
  /**
   * Pass a fields object first, then the message (`logger.info(fields, message)`), as pino
   * and bunyan expect. `false`: the message alone.
   * @defaultValue `true`, except for `console`
   */
  fields?: boolean;
}

/** The facts {@link logging} logs, as the fields object. */
export interface SessionLogFields {
  /** `"connect"` or `"disconnect"`. */
  event: 'connect' | 'disconnect';
  /** The user name. */
  user: string;
  /** Client address and port. */
  remoteAddress: string;
  /** Client port. */
  remotePort: number;
  /** The client's ident, e.g. `"SSH-2.0-OpenSSH_9.6"`. */
  clientVersion: string;
  /** `"SHA256:…"` of the key that logged in, if a key did. */
  publicKey?: string;
  /** The exec command as sent; `""` for a shell. */
  command: string;
  /** The pty's TERM, if there is a pty. */
  term?: string;
  /** The pty's window as `"COLSxROWS"`, if there is a pty. */
  window?: string;
  /** Milliseconds the session lasted (on disconnect). */
  durationMs?: number;
}

/**
 * Logs each session: on connect the user, address, key fingerprint, command, TERM, window
 * size and client version; on disconnect the duration (wish's `logging`). A handler that
 * throws is logged with `error` and the error is rethrown. Put it first in `server.use()`.
 *
 * @param logger - Where to log. Unset: `console`.
 * @example
 * ```ts
 * import pino from 'pino';
 * server.use(logging(pino()));   // {"event":"connect","user":"ada",...,"msg":"ada connect ..."}
 * server.use(logging());         // ada connect 127.0.0.1:50022 command="" term=xterm-256color window=80x24 client=SSH-2.0-OpenSSH_9.6
 *                                // ada disconnect 127.0.0.1:50022 after 5.021s
 * ```
 */
export function logging(logger: Logger = console, options: LoggingOptions = {}): Middleware {
  const withFields = options.fields ?? logger !== console;
  const log = (level: 'info' | 'error', fields: SessionLogFields & { err?: unknown }, message: string): void => {
    try {
      if (withFields) logger[level](fields, message);
      else logger[level](message);
    } catch {
      // A broken logger must not break sessions.
    }
  };
  return (next) => async (session) => {
    const start = performance.now();
    const base = describe(session);
    const who = (verb: string): string => `${session.user} ${verb} ${formatAddress(session)}`;
    log('info', { ...base, event: 'connect' }, `${who('connect')} ${details(base)}`);
    try {
      await next(session);
    } catch (err) {
      const durationMs = Math.round(performance.now() - start);
      const text = err instanceof Error ? err.message : String(err);
      log('error', { ...base, event: 'disconnect', durationMs, err }, `${who('failed')} after ${seconds(durationMs)}: ${text}`);
      throw err;
    }
    const durationMs = Math.round(performance.now() - start);
    log('info', { ...base, event: 'disconnect', durationMs }, `${who('disconnect')} after ${seconds(durationMs)}`);
  };
}

function describe(s: Session): SessionLogFields {
  const fields: SessionLogFields = {
    event: 'connect',
    user: s.user,
    remoteAddress: s.remoteAddress,
    remotePort: s.remotePort,
    clientVersion: s.context.clientVersion,
    command: s.rawCommand,
  };
  if (s.publicKey) fields.publicKey = s.publicKey.fingerprint();
  if (s.pty) {
    fields.term = s.pty.term;
    fields.window = `${s.pty.window.width}x${s.pty.window.height}`;
  }
  return fields;
}

function details(f: SessionLogFields): string {
  const parts = [];
  if (f.publicKey) parts.push(`key=${f.publicKey}`);
  parts.push(`command=${JSON.stringify(f.command)}`);
  if (f.term !== undefined) parts.push(`term=${f.term}`, `window=${f.window}`);
  parts.push(`client=${f.clientVersion}`);
  return parts.join(' ');
}

function formatAddress(s: Session): string {
  return s.remoteAddress.includes(':') ? `[${s.remoteAddress}]:${s.remotePort}` : `${s.remoteAddress}:${s.remotePort}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(3)}s`;
}
