/**
 * Loading optional peer dependencies on first use, with an error that says what to install.
 *
 * @internal
 * @module
 */
import { MissingDependencyError } from '../errors.js';

/** Whether `err` says that `name` itself (not something it imports) could not be found. */
export function isMissingModule(err: unknown, name: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  // Node's code is the ESM or the CommonJS one, both ending in MODULE_NOT_FOUND.
  if (!e || typeof e.code !== 'string' || !e.code.endsWith('MODULE_NOT_FOUND')) return false;
  const message = String(e.message);
  return message.includes(`'${name}'`) || message.includes(`"${name}"`) || message.includes(`/${name}/`);
}

/**
 * Imports an optional dependency through `load` (an `import()` of it); a missing package
 * becomes a `MissingDependencyError` naming `name` and `feature`, anything else is rethrown.
 */
export async function importOptional<T>(name: string, feature: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if (isMissingModule(err, name)) throw new MissingDependencyError(name, feature, { cause: err });
    throw err;
  }
}
