/**
 * Authentication policy beside the per-method logic of auth.ts: multi-factor sequences
 * (`authMethods`, OpenSSH's AuthenticationMethods, over SSH partial success), failure reasons
 * handed from handlers to `authFailedCallback`, and the failure-time floor that keeps a failed
 * attempt for an unknown user as slow as one for a known user.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import { createHmac, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from './context.js';
import { InvalidOptionError } from './errors.js';
import type { PublicKey } from './keys.js';
import { mergePermissions } from './restrictions.js';
import type { Permissions } from './types.js';

/** Methods that passed on each connection, in order (shared with {@link passedAuthMethods}). */
const passedByContext = new WeakMap<Context, string[]>();
/** A reason a handler gave for its "no", read once by the attempt that called it. */
const notedReasons = new WeakMap<Context, string>();

/**
 * The authentication methods that have succeeded on this connection, in order: during a
 * multi-factor login (`authMethods`), the factors passed so far; once authenticated, all of
 * them (as sshd's `ExposeAuthInfo`).
 *
 * @example
 * ```ts
 * keyboardInteractiveHandler: async (ctx, challenge) => {
 *   if (!passedAuthMethods(ctx).includes('publickey')) return false; // only as a second factor
 *   const [code] = await challenge('', '', [{ prompt: 'Code: ', echo: false }]);
 *   return verifyTotp(ctx.user, code);
 * }
 * ```
 * @see sshd_config(5) AuthenticationMethods, RFC 4252 §5.1 (partial success)
 */
export function passedAuthMethods(ctx: Context): string[] {
  return [...(passedByContext.get(ctx) ?? [])];
}

/**
 * Records why a handler is about to deny an attempt; the attempt reports it to
 * `authFailedCallback` instead of the generic `'denied'`.
 * @internal
 */
export function noteAuthFailure(ctx: Context, reason: string): void {
  notedReasons.set(ctx, reason);
}

/** Reads and clears the noted reason. @internal */
export function takeAuthFailure(ctx: Context): string | undefined {
  const reason = notedReasons.get(ctx);
  notedReasons.delete(ctx);
  return reason;
}

/** Per-process key for the per-user delay, so it cannot be predicted from the user name. */
const delayKey = randomBytes(32);

/**
 * Waits until at least 5 to 9 ms (fixed per user name) have passed since `startedAt`
 * (`performance.now()`), as sshd does for every failed attempt: the reply time then does not
 * tell a nonexistent user from a wrong credential when handlers are faster than that.
 * @internal
 */
export async function failureFloor(startedAt: number, user: string): Promise<void> {
  const floor = 5 + (createHmac('sha256', delayKey).update(user).digest().readUInt32BE(0) % 4000) / 1000;
  const wait = floor - (performance.now() - startedAt);
  if (wait > 0) await sleep(wait);
}

/** The outcome of a successful method under {@link AuthPolicy}. */
export type FactorOutcome =
  | { done: true; permissions: Permissions; publicKey: PublicKey | undefined }
  | { done: false; publicKey: PublicKey | undefined; reason?: string };

/**
 * Which methods a connection may try next and when it is authenticated. Without `authMethods`
 * any one offered method authenticates. With it, the methods of one list must succeed in
 * order; each success short of that is a partial success, and the grants of the factors
 * combine (never widening: see `mergePermissions`). `publickey` twice needs two different keys.
 * @internal
 */
export class AuthPolicy {
  private readonly passed: string[] = [];
  private readonly keys: PublicKey[] = [];
  private granted: Permissions | undefined;
  private key: PublicKey | undefined;

  constructor(
    ctx: Context,
    private readonly configured: () => string[],
    private readonly lists: ReadonlyArray<readonly string[]> | undefined,
  ) {
    passedByContext.set(ctx, this.passed);
  }

  /** The methods to offer now. */
  next(): string[] {
    const configured = this.configured();
    if (!this.lists) return configured;
    const out = new Set<string>();
    for (const list of this.lists) {
      if (list.length <= this.passed.length || !this.passed.every((m, i) => list[i] === m)) continue;
      const m = list[this.passed.length]!;
      if (configured.includes(m)) out.add(m);
    }
    return [...out];
  }

  /** Whether `method` may be tried now (`none` always may; it succeeds only without handlers). */
  allows(method: string): boolean {
    return method === 'none' || this.next().includes(method);
  }

  /** Records a method that succeeded with `permissions` and (for public key) the verified key. */
  succeeded(method: string, permissions: Permissions, key: PublicKey | undefined): FactorOutcome {
    if (!this.lists) {
      this.passed.push(method);
      return { done: true, permissions, publicKey: key };
    }
    if (key && this.keys.some((k) => k.equals(key))) return { done: false, publicKey: this.key, reason: 'repeated-key' };
    const merged = this.granted ? mergePermissions(this.granted, permissions) : permissions;
    if (!merged) return { done: false, publicKey: this.key, reason: 'conflicting-permissions' };
    this.granted = merged;
    if (key) {
      this.keys.push(key);
      this.key ??= key;
    }
    this.passed.push(method);
    const done = this.lists.some((l) => l.length === this.passed.length && l.every((m, i) => this.passed[i] === m));
    if (done) return { done: true, permissions: merged, publicKey: this.key };
    return { done: false, publicKey: this.key };
  }
}

/** The handler option each `authMethods` method needs. */
const METHOD_HANDLERS: Readonly<Record<string, string>> = {
  publickey: 'publicKeyHandler',
  password: 'passwordHandler',
  'keyboard-interactive': 'keyboardInteractiveHandler',
};

/**
 * Checks `options.authMethods`: a non-empty array of non-empty lists of known method names,
 * each with its handler set.
 * @throws {@link InvalidOptionError} naming `authMethods`.
 * @internal
 */
export function validateAuthMethods(options: Record<string, unknown>): void {
  const lists = options.authMethods;
  if (!Array.isArray(lists) || lists.length === 0 || lists.some((l) => !Array.isArray(l) || l.length === 0)) {
    throw new InvalidOptionError('authMethods', 'must be a non-empty array of non-empty arrays of method names');
  }
  for (const method of lists.flat() as unknown[]) {
    const handler = typeof method === 'string' && Object.hasOwn(METHOD_HANDLERS, method) ? METHOD_HANDLERS[method]! : undefined;
    if (!handler) {
      throw new InvalidOptionError('authMethods', `unknown method ${JSON.stringify(method)} (use publickey, password, keyboard-interactive)`);
    }
    if (typeof options[handler] !== 'function') throw new InvalidOptionError('authMethods', `"${method}" needs ${handler}`);
  }
}
