/**
 * SFTP file attributes: {@link SftpAttrs}, their wire form, and `ls -l` style long names.
 *
 * @see draft-ietf-secsh-filexfer-02 §5
 * @module
 */
import { readFile } from 'node:fs/promises';
import { ATTR } from './constants.js';
import type { SftpStats } from './fs.js';

/**
 * File attributes as a client sends them (SETSTAT, OPEN, MKDIR) or the server reports them.
 * A field that is absent was not sent.
 *
 * @example
 * ```ts
 * const attrs: SftpAttrs = { permissions: 0o644, mtime: Math.floor(Date.now() / 1000) };
 * ```
 * @see draft-ietf-secsh-filexfer-02 §5
 */
export interface SftpAttrs {
  /** Size in bytes. */
  size?: number;
  /** Owner user id (sent together with `gid`). */
  uid?: number;
  /** Owner group id. */
  gid?: number;
  /** `st_mode`: type and permission bits (a client sets only the permission bits). */
  permissions?: number;
  /** Access time, seconds since the epoch (sent together with `mtime`). */
  atime?: number;
  /** Modification time, seconds since the epoch. */
  mtime?: number;
}

/** Reads an ATTRS structure at `pos`; returns it and the position after it, or undefined if truncated. @internal */
export function decodeAttrs(buf: Buffer, pos: number): { attrs: SftpAttrs; end: number } | undefined {
  if (pos + 4 > buf.length) return undefined;
  const flags = buf.readUInt32BE(pos);
  pos += 4;
  const attrs: SftpAttrs = {};
  if (flags & ATTR.SIZE) {
    if (pos + 8 > buf.length) return undefined;
    attrs.size = Number(buf.readBigUInt64BE(pos));
    pos += 8;
  }
  if (flags & ATTR.UIDGID) {
    if (pos + 8 > buf.length) return undefined;
    attrs.uid = buf.readUInt32BE(pos);
    attrs.gid = buf.readUInt32BE(pos + 4);
    pos += 8;
  }
  if (flags & ATTR.PERMISSIONS) {
    if (pos + 4 > buf.length) return undefined;
    attrs.permissions = buf.readUInt32BE(pos);
    pos += 4;
  }
  if (flags & ATTR.ACMODTIME) {
    if (pos + 8 > buf.length) return undefined;
    attrs.atime = buf.readUInt32BE(pos);
    attrs.mtime = buf.readUInt32BE(pos + 4);
    pos += 8;
  }
  if (flags & ATTR.EXTENDED) {
    // Extended attributes are read and ignored (no extension defines one we act on).
    if (pos + 4 > buf.length) return undefined;
    let count = buf.readUInt32BE(pos);
    pos += 4;
    while (count-- > 0) {
      for (let i = 0; i < 2; i++) {
        if (pos + 4 > buf.length) return undefined;
        const len = buf.readUInt32BE(pos);
        pos += 4 + len;
        if (pos > buf.length) return undefined;
      }
    }
  }
  return { attrs, end: pos };
}

/** The full attributes of a file, from its stats. @internal */
export function statsToAttrs(st: SftpStats): Required<SftpAttrs> {
  return {
    size: Number(st.size),
    uid: st.uid,
    gid: st.gid,
    permissions: st.mode,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

/** Bytes an encoded ATTRS takes. @internal */
export function attrsLength(a: SftpAttrs): number {
  let n = 4;
  if (a.size !== undefined) n += 8;
  if (a.uid !== undefined && a.gid !== undefined) n += 8;
  if (a.permissions !== undefined) n += 4;
  if (a.atime !== undefined && a.mtime !== undefined) n += 8;
  return n;
}

/** Writes an ATTRS structure at `pos`; returns the position after it. @internal */
export function encodeAttrs(a: SftpAttrs, buf: Buffer, pos: number): number {
  let flags = 0;
  if (a.size !== undefined) flags |= ATTR.SIZE;
  if (a.uid !== undefined && a.gid !== undefined) flags |= ATTR.UIDGID;
  if (a.permissions !== undefined) flags |= ATTR.PERMISSIONS;
  if (a.atime !== undefined && a.mtime !== undefined) flags |= ATTR.ACMODTIME;
  pos = buf.writeUInt32BE(flags >>> 0, pos);
  if (a.size !== undefined) pos = buf.writeBigUInt64BE(BigInt(Math.max(0, Math.trunc(a.size))), pos);
  if (flags & ATTR.UIDGID) {
    pos = buf.writeUInt32BE(a.uid! >>> 0, pos);
    pos = buf.writeUInt32BE(a.gid! >>> 0, pos);
  }
  if (a.permissions !== undefined) pos = buf.writeUInt32BE(a.permissions >>> 0, pos);
  if (flags & ATTR.ACMODTIME) {
    pos = buf.writeUInt32BE(a.atime! >>> 0, pos);
    pos = buf.writeUInt32BE(a.mtime! >>> 0, pos);
  }
  return pos;
}

// --- long names ----------------------------------------------------------------------------

const S_IFMT = 0o170000;
const TYPE_CHAR: Record<number, string> = {
  0o040000: 'd',
  0o120000: 'l',
  0o020000: 'c',
  0o060000: 'b',
  0o010000: 'p',
  0o140000: 's',
};

/** `drwxr-xr-x` for a mode, with setuid/setgid/sticky as `ls` shows them. @internal */
export function modeString(mode: number): string {
  const t = TYPE_CHAR[mode & S_IFMT] ?? '-';
  const rwx = (bits: number, special: boolean, ch: string): string =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  return (
    t +
    rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') +
    rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') +
    rwx(mode & 7, (mode & 0o1000) !== 0, 't')
  );
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const SIX_MONTHS = 182 * 24 * 3600 * 1000;

/** User and group names by id; numbers when unknown. @internal */
export interface OwnerNames {
  user(uid: number): string;
  group(gid: number): string;
}

/** Numeric owners (for filesystems other than the local one). @internal */
export const NUMERIC_OWNERS: OwnerNames = { user: String, group: String };

let localOwners: { at: number; names: Promise<OwnerNames> } | undefined;

function parseIds(text: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[0] && /^\d+$/.test(f[2]!)) m.set(Number(f[2]), f[0]);
  }
  return m;
}

/** Names from /etc/passwd and /etc/group (re-read at most once a minute); numbers when absent. @internal */
export function localOwnerNames(): Promise<OwnerNames> {
  if (localOwners && Date.now() - localOwners.at < 60_000) return localOwners.names;
  const read = (p: string): Promise<Map<number, string>> => readFile(p, 'utf8').then(parseIds, () => new Map());
  const names = Promise.all([read('/etc/passwd'), read('/etc/group')]).then(([u, g]) => ({
    user: (id: number) => u.get(id) ?? String(id),
    group: (id: number) => g.get(id) ?? String(id),
  }));
  localOwners = { at: Date.now(), names };
  return names;
}

/**
 * The `longname` of a directory entry, as OpenSSH's sftp-server writes it:
 * `-rw-r--r--    1 user     group        1234 Jan  2 15:04 name`.
 * @internal
 */
export function longName(name: string, st: SftpStats, owners: OwnerNames, now = Date.now()): string {
  const d = new Date(st.mtimeMs);
  const recent = st.mtimeMs > now - SIX_MONTHS && st.mtimeMs < now + SIX_MONTHS;
  const day = String(d.getDate()).padStart(2, ' ');
  const when = recent
    ? `${MONTHS[d.getMonth()]} ${day} ${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`
    : `${MONTHS[d.getMonth()]} ${day}  ${d.getFullYear()}`;
  const links = String(st.nlink ?? 1).padStart(4, ' ');
  const user = owners.user(st.uid).padEnd(8, ' ');
  const group = owners.group(st.gid).padEnd(8, ' ');
  const size = String(st.size).padStart(8, ' ');
  return `${modeString(st.mode)} ${links} ${user} ${group} ${size} ${when} ${name}`;
}
