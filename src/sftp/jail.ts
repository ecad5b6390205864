/**
 * Confinement: every client path is resolved inside the root the way a `chroot` would, one
 * component at a time, following symbolic links ourselves — an absolute link target starts
 * again at the root and `..` never climbs above it — so no path, link or race reaches a file
 * outside the root.
 *
 * On Linux with `/proc` and the local filesystem ("pinned" mode) every directory on the way
 * is held open and the next component is looked up *in that open directory*
 * (`/proc/self/fd/N/name`, i.e. `openat(2)` without following links): renaming or swapping a
 * symbolic link anywhere on the path at any moment cannot redirect a lookup outside, and the
 * final component is opened with `O_NOFOLLOW`. With another filesystem (or without `/proc`)
 * the same walk works on path strings with `lstat`, which a concurrent local change can race.
 *
 * @internal
 * @module
 */
import { existsSync } from 'node:fs';
import { constants as fsc } from 'node:fs';
import { posix } from 'node:path';
import { MAX_SYMLINKS } from './constants.js';
import { errnoError } from './errors.js';
import type { SftpFileHandle, SftpFileSystem, SftpStats } from './fs.js';

/** Linux's O_PATH (a reference to a directory entry without opening it for I/O). */
const O_PATH = process.platform === 'linux' && ['x64', 'arm64', 'ia32', 'arm', 'riscv64', 's390x'].includes(process.arch) ? 0o10000000 : 0;
const O_NOFOLLOW = fsc.O_NOFOLLOW ?? 0;
const O_DIRECTORY = fsc.O_DIRECTORY ?? 0;
/** Flags of a handle that only pins a directory entry. */
const PIN = (O_PATH || fsc.O_RDONLY) | O_NOFOLLOW;

/** Whether pinned mode can be used here. */
export const PINNED_AVAILABLE = process.platform === 'linux' && existsSync('/proc/self/fd');

/** A directory: the fs path to reach it, and the handle that pins it (pinned mode). */
interface DirRef {
  path: string;
  handle?: SftpFileHandle & { fd?: number };
}

/** A resolved client path. */
export interface Place {
  /** The canonical path the client sees, e.g. `/docs/a.txt` (`/` is the root). */
  readonly virtual: string;
  /** The fs path of the parent directory (`/proc/self/fd/N` when pinned). */
  readonly dir: string;
  /** The final component; `''` for the root itself. */
  readonly name: string;
  /** The fs path of the entry (`dir/name`, or the root's path). */
  readonly path: string;
  /** Closes what the resolution holds open. Idempotent. */
  release(): Promise<void>;
}

/** Splits a client path into components ('' and '.' dropped). */
function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

function fdPath(h: { fd?: number }): string {
  return `/proc/self/fd/${h.fd}`;
}

export class Jail {
  private constructor(
    readonly fs: SftpFileSystem,
    /** The root directory. */
    private readonly root: DirRef,
    /** Whether lookups go through pinned directory handles. */
    readonly pinned: boolean,
  ) {}

  /** Opens the root `rootPath` (which must be a directory) on `fs`. */
  static async open(fs: SftpFileSystem, rootPath: string, pinned: boolean): Promise<Jail> {
    if (pinned) {
      const handle = (await fs.open(rootPath, PIN & ~O_NOFOLLOW | O_DIRECTORY)) as DirRef['handle'] & object;
      return new Jail(fs, { path: fdPath(handle), handle }, true);
    }
    const real = await fs.realpath(rootPath);
    const st = await fs.stat(real);
    if (!st.isDirectory()) throw errnoError('ENOTDIR', `root is not a directory`);
    return new Jail(fs, { path: real }, false);
  }

  /** Closes the root. */
  async close(): Promise<void> {
    await this.root.handle?.close().catch(() => undefined);
  }

  /** The fs path of `name` in directory `dir` (`dir` is already a real fs path). */
  child(dir: string, name: string): string {
    return dir === '/' ? `/${name}` : `${dir}/${name}`;
  }

  /**
   * Resolves a client path (relative paths start at the root). With `follow`, a final
   * symbolic link is followed too (stat, open); without, the result names the link itself
   * (lstat, remove, rename, readlink). The final component need not exist; every one before it
   * must be a directory (ENOENT / ENOTDIR otherwise).
   */
  async resolve(input: string, follow: boolean): Promise<Place> {
    if (input.includes('\0')) throw errnoError('EINVAL', 'NUL in path');
    const stack: Array<{ name: string; ref: DirRef }> = [{ name: '', ref: this.root }];
    const drop = async (n: number): Promise<void> => {
      for (const e of stack.splice(stack.length - n, n)) if (e.ref !== this.root) await e.ref.handle?.close().catch(() => undefined);
    };
    let parts = components(input);
    let links = 0;
    let final = '';
    const expand = async (target: string): Promise<void> => {
      if (++links > MAX_SYMLINKS) throw errnoError('ELOOP', 'Too many levels of symbolic links');
      if (target.startsWith('/')) await drop(stack.length - 1);
      parts = [...components(target), ...parts];
    };
    try {
      while (parts.length > 0) {
        const c = parts.shift()!;
        if (c === '..') {
          if (stack.length > 1) await drop(1);
          continue;
        }
        const top = stack[stack.length - 1]!.ref;
        const path = this.child(top.path, c);
        if (parts.length === 0) {
          if (follow) {
            const st = await this.lstatOrNull(path);
            if (st?.isSymbolicLink()) {
              await expand(await this.fs.readlink(path));
              continue;
            }
          }
          final = c;
          break;
        }
        const next = await this.enter(path);
        if (typeof next === 'string') await expand(next);
        else stack.push({ name: c, ref: next });
      }
      if (final === '' && stack.length > 1) {
        final = stack[stack.length - 1]!.name;
        await drop(1);
      }
    } catch (err) {
      await drop(stack.length - 1);
      throw err;
    }
    const top = stack[stack.length - 1]!.ref;
    const held = stack.slice(1).map((e) => e.ref);
    const keep = held.pop();
    for (const ref of held) await ref.handle?.close().catch(() => undefined);
    let released = false;
    const names = stack.slice(1).map((e) => e.name);
    if (final !== '') names.push(final);
    return {
      virtual: `/${names.join('/')}`,
      dir: top.path,
      name: final,
      path: final === '' ? top.path : this.child(top.path, final),
      release: async () => {
        if (released) return;
        released = true;
        await keep?.handle?.close().catch(() => undefined);
      },
    };
  }

  /** A directory to step into, or the target string of a symbolic link found there. */
  private async enter(path: string): Promise<DirRef | string> {
    if (this.pinned) {
      try {
        const handle = await this.fs.open(path, PIN | O_DIRECTORY);
        return { path: fdPath(handle as { fd?: number }), handle };
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== 'ENOTDIR' && code !== 'ELOOP') throw err;
      }
    }
    const st = await this.fs.lstat(path);
    if (st.isSymbolicLink()) return this.fs.readlink(path);
    if (!st.isDirectory()) throw errnoError('ENOTDIR', 'Not a directory');
    if (this.pinned) return this.enter(path); // it became a directory meanwhile
    return { path };
  }

  private async lstatOrNull(path: string): Promise<SftpStats | null> {
    try {
      return await this.fs.lstat(path);
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return null;
      throw err;
    }
  }

  /**
   * Pins the entry a followed place names and returns an fs path that reaches exactly it
   * (pinned: `/proc/self/fd/M` of an `O_PATH|O_NOFOLLOW` handle; else the place's path) with
   * its stats. Fails with ELOOP when the entry turned into a symbolic link since resolution.
   */
  async pin(place: Place): Promise<{ path: string; stats: SftpStats; release(): Promise<void> }> {
    if (!this.pinned) {
      const stats = await this.fs.stat(place.path);
      return { path: place.path, stats, release: async () => undefined };
    }
    const handle = await this.fs.open(place.path, place.name === '' ? PIN & ~O_NOFOLLOW : PIN);
    try {
      const stats = await handle.stat();
      if (stats.isSymbolicLink()) throw errnoError('ELOOP', 'Too many levels of symbolic links');
      return { path: fdPath(handle as { fd?: number }), stats, release: () => handle.close().catch(() => undefined) };
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
  }

  /** Flags for opening a place's final component: never following a link there, never blocking on a FIFO. */
  static openFlags(flags: number): number {
    return flags | O_NOFOLLOW | (fsc.O_NONBLOCK ?? 0);
  }

  /**
   * What to store for a new symbolic link at `linkVirtual` pointing to `target`: the target
   * made relative to the link's directory and normalised (`a/../b` → `b`, `/x` → `../x`), so
   * that programs on the host that follow it physically stay inside the root too; `undefined`
   * when the target leaves the root.
   */
  static linkTarget(linkVirtual: string, target: string): string | undefined {
    if (target === '' || target.includes('\0')) return undefined;
    const base = posix.dirname(linkVirtual);
    const out: string[] = [];
    for (const c of components(target.startsWith('/') ? target : `${base}/${target}`)) {
      if (c !== '..') out.push(c);
      else if (out.pop() === undefined) return undefined; // above the root
    }
    return posix.relative(base, `/${out.join('/')}`) || '.';
  }
}
