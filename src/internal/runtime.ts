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
): Promise<R | F> {
  try {
    return await fn(...args);
  } catch (err) {
    rt.report(new HookError(name, err));
    return fallback;
  }
}
