/**
 * Composing {@link Middleware} around a {@link Handler}.
 *
 * @module
 */
import type { Handler, Middleware } from './hooks.js';

/**
 * Wraps `handler` in `middleware`; the first middleware is outermost and runs first.
 *
 * @example
 * ```ts
 * const h = compose([logging, auth], app); // logging(auth(app))
 * ```
 */
export function compose(middleware: readonly Middleware[], handler: Handler): Handler {
  let h = handler;
  for (let i = middleware.length - 1; i >= 0; i--) h = middleware[i]!(h);
  return h;
}
