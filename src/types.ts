/**
 * Plain data types shared by the public API.
 *
 * @module
 */

/** A value or a promise of it: every hook may answer synchronously or asynchronously. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * What the authentication handlers grant a connection, as in OpenSSH certificates and
 * gliderlabs' `Permissions`. Every auth attempt starts with a fresh, empty object; only the
 * successful attempt's object is kept.
 */
export interface Permissions {
  /** Options such as `force-command` or `source-address`, by name. */
  criticalOptions: Record<string, string>;
  /** Extensions such as `permit-pty`, by name; handlers may store their own values here. */
  extensions: Record<string, string>;
}

/**
 * A terminal window size.
 * @see RFC 4254 §6.2 and §6.7
 */
export interface Window {
  /** Columns. */
  width: number;
  /** Rows. */
  height: number;
  /** Width in pixels; `0` when the client did not say. */
  widthPixels: number;
  /** Height in pixels; `0` when the client did not say. */
  heightPixels: number;
}

/**
 * A pseudo-terminal the client asked for with `pty-req`.
 * @see RFC 4254 §6.2
 */
export interface Pty {
  /** The `TERM` value, e.g. `"xterm-256color"`. */
  term: string;
  /** The window at the time of the request. */
  window: Window;
  /**
   * Terminal modes by their RFC 4254 §8 name, e.g. `{ ECHO: 1, VINTR: 3, TTY_OP_ISPEED: 38400 }`.
   * Opcodes the RFC does not name are left out.
   */
  modes: Record<string, number>;
}

/**
 * A signal name as sent in an SSH `signal` request, without the `SIG` prefix.
 * @see RFC 4254 §6.10
 */
export type Signal =
  | 'ABRT'
  | 'ALRM'
  | 'FPE'
  | 'HUP'
  | 'ILL'
  | 'INT'
  | 'KILL'
  | 'PIPE'
  | 'QUIT'
  | 'SEGV'
  | 'TERM'
  | 'USR1'
  | 'USR2'
  | (string & {});

/** One question of a keyboard-interactive challenge. */
export interface Question {
  /** The text shown to the user. */
  prompt: string;
  /** Whether the user's answer is echoed as it is typed. */
  echo: boolean;
}

/**
 * Asks the client a keyboard-interactive round of questions and resolves with its answers,
 * one per question, in order.
 * @see RFC 4256
 */
export type KeyboardInteractiveChallenge = (
  name: string,
  instruction: string,
  questions: Question[],
) => Promise<string[]>;
