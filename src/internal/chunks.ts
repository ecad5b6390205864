/**
 * An async iterator over a Readable that yields each chunk as it was pushed. Node's own
 * iterator reads with `read()`, which concatenates whatever is buffered into a new Buffer
 * (a copy, and garbage) and destroys the stream when the loop ends early; this one does
 * neither: it pauses the stream while too many chunks wait and leaves it paused when done.
 *
 * @internal
 * @module
 */
import type { Readable } from 'node:stream';

/** Chunks queued before the stream is paused. */
const HIGH = 16;
/** Chunks left in the queue when a paused stream is resumed. */
const LOW = 4;

export function readChunks(stream: Readable): AsyncIterableIterator<any> {
  const queue: unknown[] = [];
  let done = stream.readableEnded;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const onData = (chunk: unknown): void => {
    queue.push(chunk);
    if (queue.length >= HIGH) stream.pause();
    notify();
  };
  const onEnd = (): void => {
    done = true;
    notify();
  };
  const onError = (err: unknown): void => {
    failure ??= err;
    onEnd();
  };
  const cleanup = (): void => {
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('close', onEnd);
    stream.off('error', onError);
    stream.pause();
  };
  if (!done) {
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
  }
  const iterator: AsyncIterableIterator<any> = {
    async next(): Promise<IteratorResult<any>> {
      while (queue.length === 0 && !done) await new Promise<void>((resolve) => (wake = resolve));
      if (queue.length > 0) {
        const value = queue.shift();
        if (queue.length <= LOW && !done && stream.isPaused()) stream.resume();
        return { value, done: false };
      }
      cleanup();
      if (failure !== undefined) {
        const err = failure;
        failure = undefined;
        throw err;
      }
      return { value: undefined, done: true };
    },
    async return(): Promise<IteratorResult<any>> {
      done = true;
      queue.length = 0;
      cleanup();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
