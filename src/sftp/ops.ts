/**
 * The path operations of the file servers (SFTP and SCP share them): each resolves its paths
 * inside the root with the {@link Jail}, applies `readOnly`, `umask` and the operation
 * callback, and calls the filesystem.
 *
 * @see draft-ietf-secsh-filexfer-02 §6.3–§6.10
 * @internal
 * @module
 */
import { constants as fsc } from 'node:fs';
import { HookError } from '../errors.js';
import { runtimeOf } from '../internal/runtime.js';
import type { Session } from '../session.js';
import { statsToAttrs, type OwnerNames, type SftpAttrs } from './attrs.js';
import { PFLAG, SftpStatus } from './constants.js';
import { errnoError, SftpStatusError } from './errors.js';
import type { SftpFileHandle, SftpStats, SftpStatFs } from './fs.js';
import { Jail, type Place } from './jail.js';
import type { ResolvedFileServerOptions, SftpOperation } from './options.js';

/** Everything an operation needs about its session. */
export interface OpContext {
  readonly session: Session;
  readonly jail: Jail;
  readonly options: ResolvedFileServerOptions;
  readonly owners: OwnerNames;
}

/** Reports an error on the server's 'error' event with the session's context. */
export function report(session: Session, err: unknown): void {
  const rt = runtimeOf(session.context);
  if (rt) rt.report(err);
  else session.context.server.emit('error', err instanceof Error ? err : new Error(String(err)));
}

/**
 * Reports an error that is neither a status nor an errno (a bug in a custom filesystem, say)
 * on the server's 'error' event as a HookError named "fs"; the client just sees FAILURE.
 */
export function reportUnexpected(session: Session, err: unknown): void {
  if (err instanceof SftpStatusError) return;
  if (typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string') return;
  report(session, new HookError('fs', err));
}

/** Throws PERMISSION_DENIED unless the operation callback allows `op`. */
export async function allow(ctx: OpContext, op: SftpOperation): Promise<void> {
  const cb = ctx.options.operationCallback;
  if (!cb) return;
  let ok = false;
  try {
    ok = (await cb(ctx.session, op)) === true;
  } catch (err) {
    report(ctx.session, new HookError('operationCallback', err));
  }
  if (!ok) throw new SftpStatusError(SftpStatus.PERMISSION_DENIED, 'Permission denied');
}

/** Throws PERMISSION_DENIED on a read-only server. */
export function writable(ctx: OpContext): void {
  if (ctx.options.readOnly) throw new SftpStatusError(SftpStatus.PERMISSION_DENIED, 'Read-only server');
}

function denyRoot(place: Place): void {
  if (place.name === '') throw new SftpStatusError(SftpStatus.PERMISSION_DENIED, 'Permission denied');
}

/**
 * Resolves `path` and runs `fn` with the place, releasing it afterwards. An ELOOP (the final
 * entry became a symbolic link after it was resolved) resolves again, twice at most.
 */
export async function withPlace<T>(ctx: OpContext, path: string, follow: boolean, fn: (p: Place) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    const place = await ctx.jail.resolve(path, follow);
    try {
      return await fn(place);
    } catch (err) {
      if (attempt >= 2 || (err as { code?: string }).code !== 'ELOOP') throw err;
    } finally {
      await place.release();
    }
  }
}

/** Stats of a resolved entry; with `follow` it must not have become a link since. */
export async function entryStats(ctx: OpContext, place: Place, follow: boolean): Promise<SftpStats> {
  if (place.name === '') return ctx.jail.fs.stat(place.path);
  const st = await ctx.jail.fs.lstat(place.path);
  if (follow && st.isSymbolicLink()) throw errnoError('ELOOP', 'Too many levels of symbolic links');
  return st;
}

/** An open file and what the server remembers about it. */
export interface OpenFile {
  fh: SftpFileHandle;
  virtual: string;
  append: boolean;
}

/** Decoded SSH_FXP_OPEN `pflags`. */
export function openOperation(path: string, pflags: number): Extract<SftpOperation, { type: 'open' }> {
  const write = (pflags & PFLAG.WRITE) !== 0;
  return {
    type: 'open',
    path,
    read: (pflags & PFLAG.READ) !== 0 || !write,
    write,
    create: (pflags & PFLAG.CREAT) !== 0,
    truncate: (pflags & PFLAG.TRUNC) !== 0,
  };
}

/** SSH_FXP_OPEN: opens a regular file. */
export async function openFile(ctx: OpContext, path: string, pflags: number, attrs: SftpAttrs): Promise<OpenFile> {
  const op = openOperation(path, pflags);
  const append = (pflags & PFLAG.APPEND) !== 0;
  const excl = (pflags & PFLAG.EXCL) !== 0;
  if (op.write || op.create || op.truncate || append) writable(ctx);
  let flags = op.read && op.write ? fsc.O_RDWR : op.write ? fsc.O_WRONLY : fsc.O_RDONLY;
  if (append) flags |= fsc.O_APPEND;
  if (op.create) flags |= fsc.O_CREAT;
  if (op.truncate) flags |= fsc.O_TRUNC;
  if (excl) flags |= fsc.O_EXCL;
  const umask = ctx.options.umask;
  const mode = ((attrs.permissions ?? 0o666) & 0o7777 & ~(umask ?? 0)) >>> 0;
  return withPlace(ctx, path, true, async (place) => {
    if (place.name === '') throw errnoError('EISDIR', 'Is a directory');
    await allow(ctx, { ...op, path: place.virtual });
    const fs = ctx.jail.fs;
    let fh: SftpFileHandle;
    let created = false;
    if (umask !== undefined && op.create && !excl) {
      // Find out whether the file is new, to give it exactly `mode` below.
      try {
        fh = await fs.open(place.path, Jail.openFlags(flags | fsc.O_EXCL), mode);
        created = true;
      } catch (err) {
        if ((err as { code?: string }).code !== 'EEXIST') throw err;
        fh = await fs.open(place.path, Jail.openFlags(flags & ~fsc.O_CREAT), mode);
      }
    } else {
      fh = await fs.open(place.path, Jail.openFlags(flags), mode);
      created = excl;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw new SftpStatusError(SftpStatus.FAILURE, st.isDirectory() ? 'Is a directory' : 'Not a regular file');
      if (created && umask !== undefined) await fh.chmod(mode);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
    return { fh, virtual: place.virtual, append };
  });
}

/** SSH_FXP_STAT / SSH_FXP_LSTAT. */
export function statPath(ctx: OpContext, path: string, follow: boolean): Promise<SftpStats> {
  return withPlace(ctx, path, follow, async (place) => {
    await allow(ctx, { type: follow ? 'stat' : 'lstat', path: place.virtual });
    return entryStats(ctx, place, follow);
  });
}

/** Applies attributes to an fs path that reaches exactly the entry (OpenSSH's order). */
export async function applyAttrs(ctx: OpContext, target: string | SftpFileHandle, a: SftpAttrs): Promise<void> {
  const fs = ctx.jail.fs;
  const byPath = typeof target === 'string';
  if (a.size !== undefined) await (byPath ? fs.truncate(target, a.size) : target.truncate(a.size));
  if (a.permissions !== undefined) await (byPath ? fs.chmod(target, a.permissions & 0o7777) : target.chmod(a.permissions & 0o7777));
  if (a.atime !== undefined && a.mtime !== undefined) {
    await (byPath ? fs.utimes(target, a.atime, a.mtime) : target.utimes(a.atime, a.mtime));
  }
  if (a.uid !== undefined && a.gid !== undefined) await (byPath ? fs.chown(target, a.uid, a.gid) : target.chown(a.uid, a.gid));
}

/** SSH_FXP_SETSTAT. */
export function setstatPath(ctx: OpContext, path: string, attrs: SftpAttrs): Promise<void> {
  writable(ctx);
  return withPlace(ctx, path, true, async (place) => {
    await allow(ctx, { type: 'setstat', path: place.virtual });
    const pin = await ctx.jail.pin(place);
    try {
      await applyAttrs(ctx, pin.path, attrs);
    } finally {
      await pin.release();
    }
  });
}

/** SSH_FXP_REMOVE. */
export function removePath(ctx: OpContext, path: string): Promise<void> {
  writable(ctx);
  return withPlace(ctx, path, false, async (place) => {
    denyRoot(place);
    await allow(ctx, { type: 'remove', path: place.virtual });
    await ctx.jail.fs.unlink(place.path);
  });
}

/** SSH_FXP_MKDIR. */
export function mkdirPath(ctx: OpContext, path: string, attrs: SftpAttrs): Promise<void> {
  writable(ctx);
  const umask = ctx.options.umask;
  const mode = ((attrs.permissions ?? 0o777) & 0o7777 & ~(umask ?? 0)) >>> 0;
  return withPlace(ctx, path, false, async (place) => {
    if (place.name === '') throw errnoError('EEXIST', 'File exists');
    await allow(ctx, { type: 'mkdir', path: place.virtual });
    await ctx.jail.fs.mkdir(place.path, mode);
    if (umask === undefined) return;
    const pin = await ctx.jail.pin(place);
    try {
      await ctx.jail.fs.chmod(pin.path, mode);
    } finally {
      await pin.release();
    }
  });
}

/** SSH_FXP_RMDIR. */
export function rmdirPath(ctx: OpContext, path: string): Promise<void> {
  writable(ctx);
  return withPlace(ctx, path, false, async (place) => {
    denyRoot(place);
    await allow(ctx, { type: 'rmdir', path: place.virtual });
    await ctx.jail.fs.rmdir(place.path);
  });
}

/** SSH_FXP_REALPATH: the canonical client path (the last component need not exist). */
export function realPath(ctx: OpContext, path: string): Promise<string> {
  return withPlace(ctx, path, true, async (place) => {
    await allow(ctx, { type: 'realpath', path: place.virtual });
    return place.virtual;
  });
}

/** SSH_FXP_READLINK. */
export function readlinkPath(ctx: OpContext, path: string): Promise<string> {
  return withPlace(ctx, path, false, async (place) => {
    await allow(ctx, { type: 'readlink', path: place.virtual });
    return ctx.jail.fs.readlink(place.path);
  });
}

/** SSH_FXP_SYMLINK: stores a target that stays inside the root (see {@link Jail.linkTarget}). */
export function symlinkPath(ctx: OpContext, target: string, linkPath: string): Promise<void> {
  writable(ctx);
  return withPlace(ctx, linkPath, false, async (place) => {
    if (place.name === '') throw errnoError('EEXIST', 'File exists');
    const stored = Jail.linkTarget(place.virtual, target);
    if (stored === undefined) throw new SftpStatusError(SftpStatus.PERMISSION_DENIED, 'Link target is outside the root');
    await allow(ctx, { type: 'symlink', path: place.virtual, target });
    await ctx.jail.fs.symlink(stored, place.path);
  });
}

/** Two places at once (rename, link), both released afterwards. */
async function withTwo(ctx: OpContext, a: string, b: string, fn: (pa: Place, pb: Place) => Promise<void>): Promise<void> {
  await withPlace(ctx, a, false, (pa) => withPlace(ctx, b, false, (pb) => fn(pa, pb)));
}

async function exists(ctx: OpContext, path: string): Promise<boolean> {
  try {
    await ctx.jail.fs.lstat(path);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * SSH_FXP_RENAME (fails when `newPath` exists, as the draft says: a file is linked then
 * unlinked, as OpenSSH does) or, with `replace`, `posix-rename@openssh.com` (rename(2)).
 */
export function renamePath(ctx: OpContext, oldPath: string, newPath: string, replace: boolean): Promise<void> {
  writable(ctx);
  return withTwo(ctx, oldPath, newPath, async (from, to) => {
    denyRoot(from);
    denyRoot(to);
    await allow(ctx, { type: 'rename', path: from.virtual, newPath: to.virtual });
    const fs = ctx.jail.fs;
    if (replace) return fs.rename(from.path, to.path);
    const st = await fs.lstat(from.path);
    if (st.isFile()) {
      try {
        await fs.link(from.path, to.path);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'EEXIST' || !['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK'].includes(code ?? '')) throw err;
        if (await exists(ctx, to.path)) throw errnoError('EEXIST', 'File exists');
        return fs.rename(from.path, to.path);
      }
      try {
        await fs.unlink(from.path);
      } catch (err) {
        await fs.unlink(to.path).catch(() => undefined);
        throw err;
      }
      return;
    }
    if (await exists(ctx, to.path)) throw errnoError('EEXIST', 'File exists');
    await fs.rename(from.path, to.path);
  });
}

/** `hardlink@openssh.com`. */
export function linkPath(ctx: OpContext, existing: string, newPath: string): Promise<void> {
  writable(ctx);
  return withTwo(ctx, existing, newPath, async (from, to) => {
    denyRoot(from);
    denyRoot(to);
    await allow(ctx, { type: 'link', path: from.virtual, newPath: to.virtual });
    await ctx.jail.fs.link(from.path, to.path);
  });
}

/** `statvfs@openssh.com`: the filesystem holding `path`. */
export function statvfsPath(ctx: OpContext, path: string): Promise<SftpStatFs> {
  return withPlace(ctx, path, true, async (place) => {
    await allow(ctx, { type: 'statvfs', path: place.virtual });
    const statfs = ctx.jail.fs.statfs;
    if (!statfs) throw new SftpStatusError(SftpStatus.OP_UNSUPPORTED, 'Operation unsupported');
    const pin = await ctx.jail.pin(place);
    try {
      return await statfs.call(ctx.jail.fs, pin.path);
    } finally {
      await pin.release();
    }
  });
}

/** The attributes of a stat result, as sent. */
export { statsToAttrs };
