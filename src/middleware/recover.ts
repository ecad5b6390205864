/**
 * {@link recover}: a throwing handler becomes exit status 1 with a message.
 *
 * @module
 */
import type { Middleware } from '../hooks.js';
import type { Session } from '../session.js';

/** Options of {@link recover}. */
export interface RecoverOptions {
  /**
   * What the client sees on stderr (a newline is added). A function gets the error; take care
   * not to show clients secrets from error messages.
   * @defaultValue `"internal error"`
   */
  message?: string | ((err: unknown) => string);
  /**
   * Told about the error. Unset: it goes to the server's `'error'` event with `err.context`
   * set (a process warning when nothing listens), as an uncaught handler error would.
   */
  onError?: (err: unknown, session: Session) => void;
}

/**
 * Catches what the rest of the chain throws or rejects with: writes a message to the client's
 * stderr, exits with status 1, and reports the error (wish's `recover`). Without it a throwing
 * handler also exits 1, but the client sees no message and outer middleware sees the throw.
 *
 * @example
 * ```ts
 * server.use(logging(), recover({ message: (err) => `error: ${(err as Error).message}` }));
 * server.handle(() => { throw new Error('boom'); }); // client: "error: boom", exit status 1
 * ```
 */
export function recover(options: RecoverOptions = {}): Middleware {
  const { message = 'internal error', onError = report } = options;
  return (next) => async (session) => {
    try {
      await next(session);
    } catch (err) {
      try {
        onError(err, session);
      } catch {
        // A failing reporter must not turn back into a throw.
      }
      session.stderr.write(`${typeof message === 'function' ? safe(message, err) : message}\n`);
      await session.exit(1).catch(() => undefined);
    }
  };
}

function safe(format: (err: unknown) => string, err: unknown): string {
  try {
    return String(format(err));
  } catch {
    return 'internal error';
  }
}

/** Reports on the server's 'error' event as the server does for a throwing handler. */
function report(err: unknown, session: Session): void {
  const error = err instanceof Error ? err : new Error(String(err));
  if (!('context' in error)) {
    Object.defineProperty(error, 'context', { value: session.context, configurable: true, enumerable: false });
  }
  const server = session.context.server;
  if (server.listenerCount('error') > 0) server.emit('error', error);
  else process.emitWarning(error);
}
