/**
 * Filesystems for SFTP/SCP tests: a wrapper around node:fs/promises that counts open handles
 * and concurrent reads/writes (and can slow them down), and a small in-memory filesystem that
 * implements SftpFileSystem without touching the disk.
 */
import { constants as C } from 'node:fs';
import fsp from 'node:fs/promises';
import { posix } from 'node:path';
import type { SftpFileHandle, SftpFileSystem, SftpStats } from '../../src/sftp/fs.js';
import { delay } from './harness.js';

export interface Tracking {
  open: number;
  maxOpen: number;
  reads: number;
  maxReads: number;
  writes: number;
  maxWrites: number;
  /** Bytes of reads plus writes in progress, and the most seen at once. */
  bytes: number;
  maxBytes: number;
  /** ms added to each read and write. */
  slow: number;
  /** Called before each open (to change the tree at that moment). */
  beforeOpen?: (path: string) => Promise<void> | void;
}

/** node:fs/promises with counters (a custom filesystem, so the server uses path-string resolution). */
export function trackingFs(): { fs: SftpFileSystem; t: Tracking } {
  const t: Tracking = { open: 0, maxOpen: 0, reads: 0, maxReads: 0, writes: 0, maxWrites: 0, bytes: 0, maxBytes: 0, slow: 0 };
  const wrap = (fh: Awaited<ReturnType<typeof fsp.open>>): SftpFileHandle => {
    let closed = false;
    return {
      async read(buf, off, len, pos) {
        t.reads++;
        t.bytes += len;
        t.maxReads = Math.max(t.maxReads, t.reads);
        t.maxBytes = Math.max(t.maxBytes, t.bytes);
        try {
          if (t.slow) await delay(t.slow);
          return await fh.read(buf, off, len, pos);
        } finally {
          t.reads--;
          t.bytes -= len;
        }
      },
      async write(buf, off, len, pos) {
        t.writes++;
        t.bytes += len;
        t.maxWrites = Math.max(t.maxWrites, t.writes);
        t.maxBytes = Math.max(t.maxBytes, t.bytes);
        try {
          if (t.slow) await delay(t.slow);
          return await fh.write(buf, off, len, pos);
        } finally {
          t.writes--;
          t.bytes -= len;
        }
      },
      stat: () => fh.stat(),
      chmod: (m) => fh.chmod(m),
      chown: (u, g) => fh.chown(u, g),
      utimes: (a, m) => fh.utimes(a, m),
      truncate: (l) => fh.truncate(l),
      sync: () => fh.sync(),
      async close() {
        if (!closed) t.open--;
        closed = true;
        await fh.close();
      },
    };
  };
  const fs: SftpFileSystem = {
    ...fsp,
    async open(path, flags, mode) {
      await t.beforeOpen?.(path);
      const fh = await fsp.open(path, flags, mode);
      t.open++;
      t.maxOpen = Math.max(t.maxOpen, t.open);
      return wrap(fh);
    },
  };
  return { fs, t };
}

// ---------------------------------------------------------------------------------------------

type Node =
  | { kind: 'dir'; mode: number; children: Map<string, Node>; mtime: number }
  | { kind: 'file'; mode: number; data: Buffer; mtime: number }
  | { kind: 'link'; target: string; mtime: number };

const err = (code: string): Error => Object.assign(new Error(code), { code });

function stats(n: Node): SftpStats {
  const type = n.kind === 'dir' ? 0o040000 : n.kind === 'file' ? 0o100000 : 0o120000;
  const perm = n.kind === 'link' ? 0o777 : n.mode;
  return {
    mode: type | perm,
    size: n.kind === 'file' ? n.data.length : n.kind === 'link' ? n.target.length : 4096,
    uid: 1000,
    gid: 1000,
    nlink: 1,
    atimeMs: n.mtime,
    mtimeMs: n.mtime,
    isDirectory: () => n.kind === 'dir',
    isFile: () => n.kind === 'file',
    isSymbolicLink: () => n.kind === 'link',
  };
}

/** A small in-memory tree (files, directories, symbolic links) behind the SftpFileSystem interface. */
export function memoryFs(files: Record<string, string> = {}): SftpFileSystem & { root: Node } {
  const root: Node = { kind: 'dir', mode: 0o755, children: new Map(), mtime: Date.now() };
  const walk = (p: string, follow: boolean, depth = 0): Node => {
    if (depth > 20) throw err('ELOOP');
    let cur: Node = root;
    const parts = posix.normalize(p).split('/').filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      if (cur.kind !== 'dir') throw err('ENOTDIR');
      const next = cur.children.get(parts[i]!);
      if (!next) throw err('ENOENT');
      if (next.kind === 'link' && (follow || i < parts.length - 1)) {
        const base = '/' + parts.slice(0, i).join('/');
        cur = walk(posix.resolve(base, next.target) + '/' + parts.slice(i + 1).join('/'), follow, depth + 1);
        return cur;
      }
      cur = next;
    }
    return cur;
  };
  const parentOf = (p: string): { dir: Extract<Node, { kind: 'dir' }>; name: string } => {
    const dir = walk(posix.dirname(p), true);
    if (dir.kind !== 'dir') throw err('ENOTDIR');
    return { dir, name: posix.basename(p) };
  };
  const put = (p: string, n: Node): void => {
    const { dir, name } = parentOf(p);
    if (dir.children.has(name)) throw err('EEXIST');
    dir.children.set(name, n);
  };
  const handle = (n: Extract<Node, { kind: 'file' }>, append: boolean): SftpFileHandle => ({
    async read(buf, off, len, pos) {
      const bytesRead = Math.max(0, Math.min(len, n.data.length - pos));
      n.data.copy(buf, off, pos, pos + bytesRead);
      return { bytesRead };
    },
    async write(buf, off, len, pos) {
      const at = append ? n.data.length : pos;
      if (at + len > n.data.length) n.data = Buffer.concat([n.data, Buffer.alloc(at + len - n.data.length)]);
      buf.copy(n.data, at, off, off + len);
      n.mtime = Date.now();
      return { bytesWritten: len };
    },
    stat: async () => stats(n),
    chmod: async (m) => void (n.mode = m & 0o7777),
    chown: async () => undefined,
    utimes: async (_a, m) => void (n.mtime = m * 1000),
    truncate: async (l) => void (n.data = Buffer.concat([n.data.subarray(0, l), Buffer.alloc(Math.max(0, l - n.data.length))])),
    sync: async () => undefined,
    close: async () => undefined,
  });
  const fs: SftpFileSystem & { root: Node } = {
    root,
    async open(p, flags, mode = 0o666) {
      let n: Node | undefined;
      try {
        n = walk(p, (flags & C.O_NOFOLLOW) === 0);
      } catch (e) {
        if ((e as { code?: string }).code !== 'ENOENT' || !(flags & C.O_CREAT)) throw e;
      }
      if (n && flags & C.O_CREAT && flags & C.O_EXCL) throw err('EEXIST');
      if (!n) put(p, (n = { kind: 'file', mode: mode & 0o7777, data: Buffer.alloc(0), mtime: Date.now() }));
      if (n.kind === 'link') throw err('ELOOP');
      if (n.kind === 'dir') throw err('EISDIR');
      if (flags & C.O_TRUNC) n.data = Buffer.alloc(0);
      return handle(n, (flags & C.O_APPEND) !== 0);
    },
    stat: async (p) => stats(walk(p, true)),
    lstat: async (p) => stats(walk(p, false)),
    async readdir(p) {
      const n = walk(p, true);
      if (n.kind !== 'dir') throw err('ENOTDIR');
      return [...n.children.keys()];
    },
    mkdir: async (p, mode = 0o777) => put(p, { kind: 'dir', mode: mode & 0o7777, children: new Map(), mtime: Date.now() }),
    async rmdir(p) {
      const { dir, name } = parentOf(p);
      const n = dir.children.get(name);
      if (!n) throw err('ENOENT');
      if (n.kind !== 'dir') throw err('ENOTDIR');
      if (n.children.size > 0) throw err('ENOTEMPTY');
      dir.children.delete(name);
    },
    async unlink(p) {
      const { dir, name } = parentOf(p);
      const n = dir.children.get(name);
      if (!n) throw err('ENOENT');
      if (n.kind === 'dir') throw err('EISDIR');
      dir.children.delete(name);
    },
    async rename(a, b) {
      const from = parentOf(a);
      const n = from.dir.children.get(from.name);
      if (!n) throw err('ENOENT');
      const to = parentOf(b);
      from.dir.children.delete(from.name);
      to.dir.children.set(to.name, n);
    },
    async readlink(p) {
      const n = walk(p, false);
      if (n.kind !== 'link') throw err('EINVAL');
      return n.target;
    },
    symlink: async (target, p) => put(p, { kind: 'link', target, mtime: Date.now() }),
    link: async (a, b) => put(b, walk(a, false)),
    chmod: async (p, m) => {
      const n = walk(p, true);
      if (n.kind !== 'link') n.mode = m & 0o7777;
    },
    chown: async () => undefined,
    utimes: async (p, _a, m) => void (walk(p, true).mtime = m * 1000),
    truncate: async (p, l) => {
      const n = walk(p, true);
      if (n.kind !== 'file') throw err('EISDIR');
      n.data = Buffer.concat([n.data.subarray(0, l), Buffer.alloc(Math.max(0, l - n.data.length))]);
    },
    async realpath(p) {
      walk(p, true);
      return posix.normalize(p);
    },
  };
  for (const [p, content] of Object.entries(files)) {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const d = '/' + parts.slice(0, i).join('/');
      try {
        walk(d, true);
      } catch {
        put(d, { kind: 'dir', mode: 0o755, children: new Map(), mtime: Date.now() });
      }
    }
    put(p, { kind: 'file', mode: 0o644, data: Buffer.from(content), mtime: Date.now() });
  }
  return fs;
}
