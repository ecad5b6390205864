/**
 * What a connection's parts (auth, channels, sessions) share: the ssh2 connection, the
 * context, the options, and one way to call user hooks and report their failures.
 *
 * @internal
 * @module
 */
import type { Context } from '../context.js';
import { ConnectionContext } from '../context.js';
import { HookError } from '../errors.js';
import type { Handler } from '../hooks.js';
import type { ServerOptions } from '../options.js';
import type { Ssh2Connection } from './ssh2-compat.js';

/** A channel request routed to one of our channels. */
export interface ChannelRequestTarget {
  onRequest(type: string, wantReply: boolean, data: Buffer): void;
}

export interface Runtime {
  readonly conn: Ssh2Connection;
  readonly ctx: ConnectionContext;
  readonly options: ServerOptions;
  /** The server's handler with its middleware applied, or undefined when there is none. */
  handler(): Handler | undefined;
  /** Reports an error on the server's `'error'` event, with `err.context` set. */
  report(err: unknown): void;
  /** Our channels that take channel requests, by local channel id. */
  readonly channels: Map<number, ChannelRequestTarget>;
}

const runtimes = new WeakMap<Context, Runtime>();

export function registerRuntime(rt: Runtime): void {
  runtimes.set(rt.ctx, rt);
}

export function runtimeOf(ctx: Context): Runtime | undefined {
  return runtimes.get(ctx);
}

/**
 * Calls a user hook. A throw or rejection is reported as a {@link HookError} and answered
 * with `fallback`, so a hook can never break the connection's flow.
 */
export async function callHook<A extends unknown[], R, F>(
  rt: Pick<Runtime, 'report'>,
  name: string,
  fn: (...args: A) => R | Promise<R>,
  args: A,
  fallback: F,
  timeoutMs = 0,
): Promise<R | F> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = fn(...args);
    // Any thenable, not only a native Promise: a bare `{ then() {} }` must not escape the bound.
    const thenable = typeof (result as { then?: unknown } | null)?.then === 'function';
    if (!timeoutMs || !thenable) return await result;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not settle within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
    });
    const settled = Promise.resolve(result);
    settled.catch(() => undefined); // a rejection after the timeout is not unhandled
    return await Promise.race([settled, late]);
  } catch (err) {
    rt.report(new HookError(name, err));
    return fallback;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** The time limit for hooks other than auth hooks (`hookTimeout`). */
export function hookTimeout(rt: Pick<Runtime, 'options'>): number {
  return rt.options.hookTimeout ?? 30_000;
}
