/**
 * A file read again when it changes, without a restart: `fs.watch` on its directory marks it
 * dirty (which also catches editors that write a new file and rename it over the old one),
 * and every read first compares `stat()` (inode, size, mtime, ctime), which works even where
 * `fs.watch` does not. The watcher is created lazily, never keeps the process alive, and is
 * closed when the last server that used the file closes (or on `close()`).
 *
 * @internal
 * @module
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { EventEmitter } from 'node:events';

export class WatchedFile<T> {
  private value: T;
  private signature = '';
  private dirty = true;
  private loading: Promise<T> | undefined;
  private watcher: FSWatcher | undefined;
  private readonly owners = new Set<EventEmitter>();

  constructor(
    readonly path: string,
    private readonly parse: (text: string) => T,
    private readonly onError: (err: Error) => void,
    private readonly empty: T,
  ) {
    this.value = empty;
  }

  /** Whether an `fs.watch` watcher is open. */
  get watching(): boolean {
    return this.watcher !== undefined;
  }

  /**
   * The parsed contents, read again first if the file changed. `owner` (a server) keeps the
   * watcher open until it emits `'close'`.
   */
  async current(owner?: EventEmitter): Promise<T> {
    if (owner) this.adopt(owner);
    this.loading ??= this.refresh().finally(() => (this.loading = undefined));
    return this.loading;
  }

  /** Closes the watcher; a later `current()` opens it again. */
  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.dirty = true;
    this.owners.clear();
  }

  private adopt(owner: EventEmitter): void {
    if (!this.owners.has(owner)) {
      this.owners.add(owner);
      owner.once('close', () => {
        if (!this.owners.delete(owner)) return;
        if (this.owners.size === 0) this.close();
      });
    }
    if (this.watcher) return;
    try {
      const name = basename(this.path);
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file === null || file === name) this.dirty = true;
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
        this.dirty = true;
      });
    } catch {
      // No watching here (a missing directory, an exotic file system): stat() still works.
      this.watcher = undefined;
    }
  }

  private async refresh(): Promise<T> {
    let sig: string;
    try {
      const s = await stat(this.path, { bigint: true });
      sig = `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    } catch (err) {
      if (this.signature !== 'missing') this.onError(asError(err));
      this.signature = 'missing';
      this.value = this.empty;
      return this.value;
    }
    if (!this.dirty && sig === this.signature) return this.value;
    // Cleared before reading: a change while reading marks it dirty again.
    this.dirty = false;
    try {
      const text = await readFile(this.path, 'utf8');
      this.value = this.parse(text);
      this.signature = sig;
    } catch (err) {
      this.onError(asError(err));
      this.value = this.empty;
      this.signature = sig;
    }
    return this.value;
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
