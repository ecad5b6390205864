/**
 * {@link accessControl}: an allow-list of commands.
 *
 * @module
 */
import type { Middleware } from '../hooks.js';

/**
 * Lets a session through only when it is a shell (no command) or its command's first word is
 * in `allowedCommands`; otherwise writes `Command is not allowed: <name>` to stderr and exits
 * with status 1 (wish's `accesscontrol`). The comparison is exact, on `session.command[0]`.
 *
 * @param allowedCommands - Command names, e.g. `["status", "version"]`.
 * @example
 * ```ts
 * server.use(accessControl(['status', 'version']));
 * // ssh host status   → runs
 * // ssh host rm -rf / → "Command is not allowed: rm", exit status 1
 * // ssh host          → runs (a shell has no command)
 * ```
 */
export function accessControl(allowedCommands: readonly string[]): Middleware {
  const allowed = new Set(allowedCommands);
  return (next) => async (session) => {
    const name = session.command[0];
    if (name !== undefined && !allowed.has(name)) {
      session.stderr.write(`Command is not allowed: ${name}\n`);
      await session.exit(1);
      return;
    }
    await next(session);
  };
}
