/**
 * {@link activeTerm}: refuses sessions without a pty.
 *
 * @module
 */
import type { Middleware } from '../hooks.js';

/**
 * Refuses sessions whose client did not ask for a pty: writes `message` to stderr and exits
 * with status 1 before the handler runs (wish's `activeterm`). Put it in front of handlers
 * that draw a TUI, such as `inkHandler()` or `ptyHandler()`.
 *
 * @param message - Written to stderr, followed by a newline.
 * @defaultValue `message`: `"Requires an active PTY"`
 * @example
 * ```ts
 * server.use(activeTerm());
 * // $ ssh -p 2222 host        → the app
 * // $ ssh -p 2222 host ls     → "Requires an active PTY", exit status 1
 * ```
 */
export function activeTerm(message = 'Requires an active PTY'): Middleware {
  return (next) => async (session) => {
    if (!session.pty) {
      session.stderr.write(`${message}\n`);
      await session.exit(1);
      return;
    }
    await next(session);
  };
}
