/**
 * {@link elapsed}: the session's duration, written when it ends.
 *
 * @module
 */
import type { Middleware } from '../hooks.js';
import { beforeExit } from './exit-hook.js';

/**
 * Writes how long the session took when it ends (wish's `elapsed`): after the handler
 * returns or throws, or right before it calls `exit()`. Put it first in `server.use()` so it
 * times the whole chain.
 *
 * @param format - Makes the line from the milliseconds.
 * @defaultValue `format`: ``(ms) => `elapsed time: ${(ms / 1000).toFixed(3)}s\n` ``
 * @example
 * ```ts
 * server.use(elapsed());
 * // $ ssh host
 * // ...
 * // elapsed time: 1.234s
 * ```
 */
export function elapsed(format: (ms: number) => string = (ms) => `elapsed time: ${(ms / 1000).toFixed(3)}s\n`): Middleware {
  return (next) => async (session) => {
    const start = performance.now();
    const done = beforeExit(session, () => session.write(format(performance.now() - start)));
    try {
      await next(session);
    } finally {
      done();
    }
  };
}
