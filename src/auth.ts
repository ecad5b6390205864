/**
 * Authentication: which methods are offered, our own signature verification, fresh state per
 * attempt, and `maxAuthTries`.
 *
 * The security contract (API.md): the client's public-key signature is verified here, not by
 * ssh2 (which never verifies it); every attempt starts with fresh permissions and re-reads the
 * user name; only a key whose signature verified on the attempt that authenticated becomes
 * `ctx.publicKey`.
 *
 * @internal
 * @module
 */
import { performance } from 'node:perf_hooks';
import { newPermissions } from './context.js';
import { AuthTriesExceededError } from './errors.js';
import { parsePublicKey, verifySignature, type PublicKey } from './keys.js';
import type { KeyboardInteractiveChallenge, Permissions } from './types.js';
import { connectionStream, DISCONNECT, disconnect } from './internal/ssh2-compat.js';
import { callHook, type Runtime } from './internal/runtime.js';
import { AuthPolicy, failureFloor, takeAuthFailure } from './auth-policy.js';

/** The subset of ssh2's auth context glidessh uses. */
interface Ssh2AuthContext {
  username: string;
  method: string;
  password?: string;
  key?: { algo: string; data: Buffer };
  signature?: Buffer;
  blob?: Buffer;
  accept(): void;
  reject(methods?: string[], isPartial?: boolean): void;
  prompt?(
    prompts: Array<{ prompt: string; echo: boolean }>,
    title: string,
    instructions: string,
    cb: (answers: string[] | Error) => void,
  ): void;
  on(event: 'abort', listener: () => void): void;
}

/** Signed public-key attempts seen on the wire, waiting for ssh2's auth event. */
const MAX_SIGNED = 16;

/** Runs authentication for one connection. */
export class Authenticator {
  /** Failed attempts so far. */
  failures = 0;
  private attempt = 0;
  private readonly signed: Array<{ data: Buffer; signature: Buffer }> = [];
  /** The previous attempt's decision; the next one waits for it (see `handle`). */
  private previous: Promise<void> = Promise.resolve();
  /** Called once when the connection is authenticated. */
  onSuccess: (() => void) | undefined;
  /** Called when the client failed too many times (the connection is then closed). */
  onTooMany: ((err: Error) => void) | undefined;

  /** Multi-factor sequences (`authMethods`) and the methods to offer next. */
  private readonly policy: AuthPolicy;

  constructor(private readonly rt: Runtime) {
    this.policy = new AuthPolicy(rt.ctx, () => this.methods, rt.options.authMethods);
  }

  /** The methods offered, in the order clients should try them. */
  get methods(): string[] {
    const o = this.rt.options;
    const m: string[] = [];
    if (o.publicKeyHandler) m.push('publickey');
    if (o.keyboardInteractiveHandler) m.push('keyboard-interactive');
    if (o.passwordHandler) m.push('password');
    return m;
  }

  /** Records a raw signature seen by the compat layer (see `ConnectionHooks.signedPublicKey`). */
  rememberSignature(data: Buffer, signature: Buffer): void {
    if (this.signed.length >= MAX_SIGNED) this.signed.shift();
    this.signed.push({ data, signature });
  }

  /** Handles ssh2's `authentication` event. Never throws. */
  handle(a: Ssh2AuthContext): void {
    // A new request can supersede a keyboard-interactive attempt whose handler is still running
    // (RFC 4252 §5). Its handler still holds `ctx` and would write into the next attempt's
    // fresh `ctx.permissions`; so the next attempt starts only once it has settled.
    const id = ++this.attempt;
    this.previous = this.previous.then(() =>
      this.decide(a, id).catch((err: unknown) => {
        this.rt.report(err);
        if (id === this.attempt) this.finish(a, false);
      }),
    );
  }

  private async decide(a: Ssh2AuthContext, id: number): Promise<void> {
    const ctx = this.rt.ctx;
    const o = this.rt.options;
    // Fresh state for every attempt.
    ctx.user = a.username;
    const perms: Permissions = newPermissions();
    ctx.permissions = perms;
    let key: PublicKey | undefined;
    let ok = false;
    let counts = true;
    // For authFailedCallback: why it failed (a handler may note a better reason) and the key offered.
    const started = performance.now();
    takeAuthFailure(ctx);
    let reason = 'denied';
    let offered: PublicKey | undefined;

    switch (this.policy.allows(a.method) ? a.method : '') {
      case 'none':
        counts = false;
        ok = this.methods.length === 0;
        break;
      case 'password':
        if (o.passwordHandler && typeof a.password === 'string') {
          ok = await callHook(this.rt, 'passwordHandler', o.passwordHandler, [ctx, a.password], false);
        }
        break;
      case 'publickey': {
        if (!o.publicKeyHandler || !a.key) break;
        let candidate: PublicKey;
        try {
          candidate = parsePublicKey(a.key.data);
        } catch {
          reason = 'invalid-key';
          break;
        }
        offered = candidate;
        if (a.signature === undefined) {
          // A query: "would this key do?" Answering yes sends PK_OK; it authenticates nothing.
          const would = await callHook(this.rt, 'publicKeyHandler', o.publicKeyHandler, [ctx, candidate], false);
          if (id !== this.attempt) return;
          if (would === true) {
            ctx.permissions = newPermissions();
            a.accept();
            return;
          }
          break;
        }
        const raw = this.takeSignature(a.blob);
        if (!raw || !verifySignature(candidate, raw.data, raw.signature)) {
          reason = 'bad-signature';
          break;
        }
        ok = await callHook(this.rt, 'publicKeyHandler', o.publicKeyHandler, [ctx, candidate], false);
        if (ok === true) key = candidate;
        break;
      }
      case 'keyboard-interactive': {
        const handler = o.keyboardInteractiveHandler;
        if (!handler || typeof a.prompt !== 'function') break;
        const challenge: KeyboardInteractiveChallenge = (name, instruction, questions) =>
          new Promise<string[]>((resolve, reject) => {
            if (id !== this.attempt) return reject(new Error('Authentication request aborted'));
            a.prompt!(
              questions.map((q) => ({ prompt: String(q.prompt), echo: Boolean(q.echo) })),
              String(name ?? ''),
              String(instruction ?? ''),
              (answers) => (answers instanceof Error ? reject(answers) : resolve(answers)),
            );
          });
        ok = await callHook(this.rt, 'keyboardInteractiveHandler', handler, [ctx, challenge], false);
        break;
      }
      default:
        reason = 'method-not-allowed';
        break;
    }

    if (id !== this.attempt) return; // a newer attempt replaced this one (RFC 4252 §5)
    if (ok === true) {
      const step = this.policy.succeeded(a.method, perms, key);
      ctx.publicKey = step.publicKey;
      if (step.done) {
        ctx.permissions = step.permissions;
        this.finish(a, true);
        return;
      }
      if (step.reason === undefined) {
        // One factor of several (authMethods): partial success, offering the next ones.
        ctx.permissions = newPermissions();
        if (!connectionStream(this.rt.conn).destroyed) a.reject(this.policy.next(), true);
        return;
      }
      reason = step.reason;
    }
    ctx.permissions = newPermissions();
    if (counts) {
      this.failures++;
      this.reportFailure(a.method, takeAuthFailure(ctx) ?? reason, offered);
    }
    await failureFloor(started, a.username);
    if (id !== this.attempt) return;
    this.finish(a, false);
  }

  /** Tells `authFailedCallback` (never awaited; a throw is reported on `'error'`). */
  private reportFailure(method: string, reason: string, publicKey: PublicKey | undefined): void {
    const cb = this.rt.options.authFailedCallback;
    if (!cb) return;
    const ctx = this.rt.ctx;
    void callHook(this.rt, 'authFailedCallback', cb, [ctx, { method, reason, user: ctx.user, publicKey }], undefined);
  }

  private finish(a: Ssh2AuthContext, ok: boolean): void {
    if (connectionStream(this.rt.conn).destroyed) return;
    if (ok) {
      a.accept();
      this.onSuccess?.();
      return;
    }
    const max = this.rt.options.maxAuthTries ?? 6;
    if (this.failures >= max) {
      const err = new AuthTriesExceededError(this.failures);
      this.onTooMany?.(err);
      disconnect(this.rt.conn, DISCONNECT.NO_MORE_AUTH_METHODS_AVAILABLE, 'Too many authentication failures');
      return;
    }
    a.reject(this.policy.next());
  }

  private takeSignature(blob: Buffer | undefined): { data: Buffer; signature: Buffer } | undefined {
    if (!blob) return undefined;
    const i = this.signed.findIndex((s) => s.data.equals(blob));
    if (i === -1) return undefined;
    return this.signed.splice(i, 1)[0];
  }
}
