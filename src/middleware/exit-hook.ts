/**
 * Running something right before a session exits, whether the handler returns or calls
 * `exit()`/`exitSignal()` itself (after which nothing more can be written).
 *
 * @internal
 * @module
 */
import type { Session } from '../session.js';

type ExitFns = Pick<Session, 'exit' | 'exitSignal'>;

/**
 * Calls `fn` once before the session sends its exit status: from a wrapped `exit()` or
 * `exitSignal()`, or from the returned `done()` (call it when the handler settled). `done()`
 * also removes the wrappers; nested uses unwind in order.
 */
export function beforeExit(session: Session, fn: () => void): () => void {
  let ran = false;
  const runOnce = (): void => {
    if (ran) return;
    ran = true;
    fn();
  };
  const target = session as ExitFns;
  const saved = {
    exit: Object.getOwnPropertyDescriptor(session, 'exit'),
    exitSignal: Object.getOwnPropertyDescriptor(session, 'exitSignal'),
  };
  const exit = target.exit;
  const exitSignal = target.exitSignal;
  target.exit = (code: number) => {
    runOnce();
    return exit.call(session, code);
  };
  target.exitSignal = (signal: string, coreDumped?: boolean, message?: string) => {
    runOnce();
    return exitSignal.call(session, signal, coreDumped, message);
  };
  return () => {
    runOnce();
    for (const key of ['exit', 'exitSignal'] as const) {
      const d = saved[key];
      if (d) Object.defineProperty(session, key, d);
      else delete (session as Partial<ExitFns>)[key];
    }
  };
}
