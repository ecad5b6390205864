/**
 * The rcp/scp protocol itself, both directions: receiving (`scp -t`) and sending (`scp -f`)
 * files and trees over a session, through the file server's confined operations.
 *
 * @internal
 * @module
 */
import { once } from 'node:events';
import { posix } from 'node:path';
import type { Session } from '../session.js';
import type { ScpCommand } from '../scp.js';
import type { ByteReader } from './byte-reader.js';
import { PFLAG, SftpStatus } from './constants.js';
import { DirListing } from './dir.js';
import { SftpStatusError, toStatus } from './errors.js';
import * as ops from './ops.js';

/** A reply from the other side that is not OK. */
export class Remote extends Error {
  constructor(
    message: string,
    readonly fatal: boolean,
  ) {
    super(message);
  }
}

const CHUNK = 256 * 1024;
const MAX_DEPTH = 64;

/** One scp run on a session. */
export class Scp {
  errors = 0;
  constructor(
    private readonly ctx: ops.OpContext,
    private readonly input: ByteReader,
    private readonly cmd: ScpCommand,
  ) {}

  private get session(): Session {
    return this.ctx.session;
  }

  private async out(data: string | Buffer): Promise<void> {
    const s = this.session;
    if (s.signal.aborted) throw new Remote('channel closed', true);
    if (!s.write(data)) await Promise.race([once(s, 'drain'), once(s.signal, 'abort')]);
  }

  /** Sends an error line (`\x01`, or `\x02` when fatal) and counts it. */
  private async error(msg: string, fatal = false): Promise<void> {
    this.errors++;
    await this.out(`${fatal ? '\x02' : '\x01'}scp: ${msg.replace(/\n/g, ' ')}\n`);
  }

  private describe(path: string, err: unknown): string {
    ops.reportUnexpected(this.session, err);
    return `${path}: ${toStatus(err).message}`;
  }

  /** Reads the other side's answer: resolves on OK, throws {@link Remote} otherwise. */
  private async response(): Promise<void> {
    const b = await this.input.byte();
    if (b === 0) return;
    if (b === 1 || b === 2) throw new Remote((await this.input.line()) ?? '', b === 2);
    throw new Remote(b === undefined ? 'unexpected end of input' : 'protocol error', true);
  }

  // --- receiving (scp -t) -------------------------------------------------------------------

  async sink(): Promise<void> {
    const target = this.cmd.paths[0]!;
    if (this.ctx.options.readOnly) return this.error('read-only server', true);
    let isDir = false;
    try {
      isDir = (await ops.statPath(this.ctx, target, true)).isDirectory();
    } catch (err) {
      if (this.cmd.targetIsDir || toStatus(err).status !== 2) return this.error(this.describe(target, err), true);
    }
    if (this.cmd.targetIsDir && !isDir) return this.error(`${target}: Not a directory`, true);
    await this.out('\0');
    const stack: Array<{ dir: string; isDir: boolean; mode: number; times?: [number, number] }> = [];
    let dir = target;
    let times: [number, number] | undefined;
    for (;;) {
      const first = await this.input.byte();
      if (first === undefined) break;
      const line = await this.input.line();
      if (line === undefined) break;
      if (first === 1 || first === 2) {
        this.errors++; // the sending side could not read a file; it goes on
        if (first === 2) break;
        continue;
      }
      const kind = String.fromCharCode(first);
      if (kind === 'T') {
        const m = /^(\d+) \d+ (\d+) \d+$/.exec(line);
        if (!m) return this.error('protocol error: bad time line', true);
        times = [Number(m[2]), Number(m[1])]; // atime, mtime
        await this.out('\0');
        continue;
      }
      if (kind === 'E') {
        const up = stack.pop();
        if (!up || line !== '') return this.error('protocol error: unexpected E', true);
        if (this.cmd.preserve) await this.finishDir(dir, up.mode, up.times);
        dir = up.dir;
        isDir = up.isDir;
        await this.out('\0');
        continue;
      }
      const m = /^([0-7]{3,4}) (\d+) (.+)$/.exec(line);
      if ((kind !== 'C' && kind !== 'D') || !m) return this.error(`protocol error: ${line.slice(0, 80)}`, true);
      const [, modeText, sizeText, name] = m as unknown as [string, string, string, string];
      if (name.includes('/') || name === '..' || name === '.') return this.error(`protocol error: unexpected filename: ${name}`, true);
      const mode = parseInt(modeText, 8);
      const path = isDir ? posix.join(dir, name) : dir;
      if (kind === 'D') {
        if (!this.cmd.recursive) return this.error('received directory without -r', true);
        try {
          const st = await ops.statPath(this.ctx, path, true).catch((err: unknown) => {
            if (toStatus(err).status !== 2) throw err;
            return undefined;
          });
          if (st && !st.isDirectory()) return this.error(`${path}: Not a directory`, true);
          if (!st) await ops.mkdirPath(this.ctx, path, { permissions: mode | 0o700 });
        } catch (err) {
          return this.error(this.describe(path, err), true);
        }
        stack.push({ dir, isDir, mode, ...(times ? { times } : {}) });
        dir = path;
        isDir = true;
        times = undefined;
        await this.out('\0');
        continue;
      }
      await this.receiveFile(path, mode, Number(sizeText), times);
      times = undefined;
    }
  }

  private async finishDir(path: string, mode: number, times?: [number, number]): Promise<void> {
    try {
      await ops.setstatPath(this.ctx, path, { permissions: mode, ...(times ? { atime: times[0], mtime: times[1] } : {}) });
    } catch (err) {
      await this.error(this.describe(path, err));
    }
  }

  private async receiveFile(path: string, mode: number, size: number, times?: [number, number]): Promise<void> {
    let file: ops.OpenFile;
    try {
      file = await ops.openFile(this.ctx, path, PFLAG.WRITE | PFLAG.CREAT | PFLAG.TRUNC, { permissions: mode });
    } catch (err) {
      return this.error(this.describe(path, err)); // the sender skips this file
    }
    let failure: unknown;
    try {
      await this.out('\0');
      let off = 0;
      while (off < size) {
        const chunk = await this.input.upTo(Math.min(CHUNK, size - off));
        if (!chunk) throw new Remote('unexpected end of input', true);
        if (failure === undefined) {
          try {
            let done = 0;
            while (done < chunk.length) done += (await file.fh.write(chunk, done, chunk.length - done, off + done)).bytesWritten;
          } catch (err) {
            failure = err; // keep reading, to stay in step with the sender
          }
        }
        off += chunk.length;
      }
      await this.response().catch((err: unknown) => {
        if (err instanceof Remote && err.fatal) throw err;
        failure ??= err;
      });
      if (failure === undefined && this.cmd.preserve) {
        await file.fh.chmod(mode & 0o7777);
        if (times) await file.fh.utimes(times[0], times[1]);
      }
    } catch (err) {
      if (err instanceof Remote) throw err;
      failure ??= err;
    } finally {
      await file.fh.close().catch(() => undefined);
    }
    if (failure instanceof Remote) return;
    if (failure !== undefined) await this.error(this.describe(path, failure));
    else await this.out('\0');
  }

  // --- sending (scp -f) ---------------------------------------------------------------------

  async source(): Promise<void> {
    await this.response();
    for (const pattern of this.cmd.paths) {
      for (const path of await this.expand(pattern)) await this.sendPath(path, 0);
    }
  }

  /** Expands `*`, `?` and `[…]` in the last component (as the remote shell would); other paths as they are. */
  private async expand(pattern: string): Promise<string[]> {
    const base = posix.basename(pattern);
    if (!/[*?[]/.test(base)) return [pattern];
    const parent = posix.dirname(pattern);
    const re = new RegExp(`^${base.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    const found: string[] = [];
    try {
      const listing = await DirListing.open(this.ctx, parent);
      try {
        for (let batch = await listing.next(); batch; batch = await listing.next()) {
          for (const e of batch) {
            if (e.filename.startsWith('.') && !base.startsWith('.')) continue;
            if (re.test(e.filename)) found.push(posix.join(parent, e.filename));
          }
        }
      } finally {
        await listing.close();
      }
    } catch {
      // reported below as no match
    }
    if (found.length === 0) await this.error(`${pattern}: No such file or directory`);
    return found.sort();
  }

  private async sendPath(path: string, depth: number): Promise<void> {
    let st;
    try {
      st = await ops.statPath(this.ctx, path, true);
    } catch (err) {
      return this.error(this.describe(path, err));
    }
    const name = posix.basename(posix.resolve('/', path)) || '.';
    if (name.includes('\n')) return this.error(`${path}: unexpected filename`);
    if (st.isDirectory()) {
      if (!this.cmd.recursive) return this.error(`${path}: not a regular file`);
      if (depth >= MAX_DEPTH) return this.error(`${path}: too deep`);
      return this.sendDir(path, name, st, depth);
    }
    if (!st.isFile()) return this.error(`${path}: not a regular file`);
    await this.sendFile(path, name);
  }

  private async timeLine(st: { atimeMs: number; mtimeMs: number }): Promise<boolean> {
    if (!this.cmd.preserve) return true;
    await this.out(`T${Math.floor(st.mtimeMs / 1000)} 0 ${Math.floor(st.atimeMs / 1000)} 0\n`);
    return this.answered();
  }

  /** Waits for the other side's answer: true on OK, false on a warning (the item is skipped). */
  private async answered(): Promise<boolean> {
    try {
      await this.response();
      return true;
    } catch (err) {
      if (err instanceof Remote && !err.fatal) {
        this.errors++;
        return false;
      }
      throw err;
    }
  }

  private async sendFile(path: string, name: string): Promise<void> {
    let file: ops.OpenFile;
    try {
      file = await ops.openFile(this.ctx, path, PFLAG.READ, {});
    } catch (err) {
      return this.error(this.describe(path, err));
    }
    try {
      const st = await file.fh.stat();
      const size = Number(st.size);
      if (!(await this.timeLine(st))) return;
      await this.out(`C${(st.mode & 0o7777).toString(8).padStart(4, '0')} ${size} ${name}\n`);
      if (!(await this.answered())) return;
      let failure: unknown;
      for (let off = 0; off < size; ) {
        const len = Math.min(CHUNK, size - off);
        const buf = Buffer.allocUnsafe(len);
        let got = 0;
        if (failure === undefined) {
          try {
            while (got < len) {
              const { bytesRead } = await file.fh.read(buf, got, len - got, off + got);
              if (bytesRead === 0) throw new SftpStatusError(SftpStatus.FAILURE, 'File shrank while it was sent');
              got += bytesRead;
            }
          } catch (err) {
            failure = err; // send zeros for the rest, as scp does, then report
          }
        }
        if (got < len) buf.fill(0, got);
        await this.out(buf);
        off += len;
      }
      if (failure !== undefined) await this.error(this.describe(path, failure));
      else await this.out('\0');
      await this.answered();
    } finally {
      await file.fh.close().catch(() => undefined);
    }
  }

  private async sendDir(path: string, name: string, st: { mode: number; atimeMs: number; mtimeMs: number }, depth: number): Promise<void> {
    let listing: DirListing;
    try {
      listing = await DirListing.open(this.ctx, path);
    } catch (err) {
      return this.error(this.describe(path, err));
    }
    try {
      if (!(await this.timeLine(st))) return;
      await this.out(`D${(st.mode & 0o7777).toString(8).padStart(4, '0')} 0 ${name}\n`);
      if (!(await this.answered())) return;
      for (let batch = await listing.next(); batch; batch = await listing.next()) {
        for (const e of batch) {
          if (e.filename !== '.' && e.filename !== '..') await this.sendPath(posix.join(path, e.filename), depth + 1);
        }
      }
      await this.out('E\n');
      await this.answered();
    } finally {
      await listing.close();
    }
  }
}

