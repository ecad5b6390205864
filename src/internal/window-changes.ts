/**
 * The async iterator behind `Session.windowChanges()`.
 *
 * @internal
 * @module
 */
import type { EventEmitter } from 'node:events';
import type { Window } from '../types.js';

/** Window changes kept per iterator that is not read. */
const WINDOW_BUFFER = 64;

/** What the iterator needs from a session. */
export interface WindowSource extends Pick<EventEmitter, 'on' | 'off'> {
  /** The window when iteration starts; undefined without a pty (nothing is yielded). */
  readonly initial: Window | undefined;
  /** Whether the session is closed already. */
  readonly closed: boolean;
  /** Aborts when the session closes. */
  readonly signal: AbortSignal;
}

/**
 * Yields the initial window, then each `'window-change'`; ends when the session closes. A
 * reader that falls behind keeps only the newest 64 changes.
 */
export function windowChangeIterator(source: WindowSource): AsyncIterator<Window> {
  const queue: Window[] = source.initial ? [{ ...source.initial }] : [];
  let done = !source.initial || source.closed;
  let wake: (() => void) | undefined;
  const onChange = (w: Window): void => {
    if (queue.length >= WINDOW_BUFFER) queue.shift();
    queue.push(w);
    wake?.();
  };
  const onClose = (): void => {
    done = true;
    wake?.();
  };
  const cleanup = (): void => {
    source.off('window-change', onChange);
    source.signal.removeEventListener('abort', onClose);
  };
  if (!done) {
    source.on('window-change', onChange);
    source.signal.addEventListener('abort', onClose, { once: true });
  }
  return {
    async next(): Promise<IteratorResult<Window>> {
      while (queue.length === 0 && !done) await new Promise<void>((r) => (wake = r));
      wake = undefined;
      const value = queue.shift();
      if (value) return { value, done: false };
      cleanup();
      return { value: undefined, done: true };
    },
    async return(): Promise<IteratorResult<Window>> {
      done = true;
      cleanup();
      return { value: undefined, done: true };
    },
  };
}
