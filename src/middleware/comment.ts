/**
 * {@link comment}: a line written when a session ends.
 *
 * @module
 */
import type { Middleware } from '../hooks.js';
import { beforeExit } from './exit-hook.js';

/**
 * Writes `text` (plus a newline) to the client when the session ends (wish's `comment`): after
 * the handler returns or throws, or right before it calls `exit()`.
 *
 * @example
 * ```ts
 * server.use(comment('Thanks for playing!'));
 * ```
 */
export function comment(text: string): Middleware {
  return (next) => async (session) => {
    const done = beforeExit(session, () => session.write(`${text}\n`));
    try {
      await next(session);
    } finally {
      done();
    }
  };
}
