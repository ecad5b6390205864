/**
 * The OpenSSH SFTP extensions glidessh serves, advertised in the VERSION reply:
 * `posix-rename@openssh.com`, `statvfs@openssh.com`, `hardlink@openssh.com`,
 * `fsync@openssh.com` and `limits@openssh.com` (which lets clients read and write 255 KiB
 * per request instead of 32 KiB).
 *
 * @see https://github.com/openssh/openssh-portable/blob/master/PROTOCOL — "sftp" extensions (PROTOCOL.sftp §4.3–§4.8 in newer releases)
 * @internal
 * @module
 */
import { FXP, MAX_HANDLES, MAX_PACKET, MAX_READ, SftpStatus } from './constants.js';
import type { SftpEngine } from './engine.js';
import * as ops from './ops.js';
import { encodeData, encodeStatus, encodeVersion, uint64s, type PacketReader } from './protocol.js';
import type { Scope } from './scheduler.js';

/** statvfs f_flag bits. */
const ST_RDONLY = 1;
const ST_NOSUID = 2;

/** The VERSION packet: version 3 and the extensions this session offers. */
export function versionExtensions(ctx: ops.OpContext): Buffer {
  const ext: Array<readonly [string, string]> = [['posix-rename@openssh.com', '1']];
  if (ctx.jail.fs.statfs) ext.push(['statvfs@openssh.com', '2']);
  ext.push(['hardlink@openssh.com', '1'], ['fsync@openssh.com', '1'], ['limits@openssh.com', '1']);
  return encodeVersion(ext);
}

const OK = (id: number): Buffer => encodeStatus(id, SftpStatus.OK, 'Success');

/** Parses and starts one SSH_FXP_EXTENDED request. */
export function runExtension(
  engine: SftpEngine,
  id: number,
  name: string,
  r: PacketReader,
  start: (scope: Scope, fn: () => Promise<Buffer>) => void,
): void {
  const ctx = engine.ctx;
  const global: Scope = { kind: 'global' };
  switch (name) {
    case 'posix-rename@openssh.com': {
      const from = r.string();
      const to = r.string();
      return start(global, async () => (await ops.renamePath(ctx, from, to, true), OK(id)));
    }
    case 'hardlink@openssh.com': {
      const from = r.string();
      const to = r.string();
      return start(global, async () => (await ops.linkPath(ctx, from, to), OK(id)));
    }
    case 'statvfs@openssh.com': {
      const path = r.string();
      return start(global, async () => {
        const s = await ops.statvfsPath(ctx, path);
        const flag = (ctx.options.readOnly ? ST_RDONLY : 0) | ST_NOSUID;
        // f_bsize f_frsize f_blocks f_bfree f_bavail f_files f_ffree f_favail f_fsid f_flag f_namemax
        const body = uint64s([s.bsize, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.ffree, 0, flag, 255]);
        return encodeData(id, body, FXP.EXTENDED_REPLY);
      });
    }
    case 'fsync@openssh.com': {
      const n = engine.parseHandle(r.bytes());
      return start({ kind: 'handle', handle: n, barrier: true }, async () => {
        await engine.fileHandle(n).fh.sync();
        return OK(id);
      });
    }
    case 'limits@openssh.com':
      return start(global, async () =>
        encodeData(id, uint64s([MAX_PACKET, engine.maxRead, MAX_READ, MAX_HANDLES]), FXP.EXTENDED_REPLY),
      );
    default:
      return start(global, async () => encodeStatus(id, SftpStatus.OP_UNSUPPORTED, `Unsupported extension ${name}`.slice(0, 200)));
  }
}
