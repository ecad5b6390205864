/**
 * One SFTP session: reads requests from the session stream, runs them under the
 * {@link Scheduler}'s ordering with bounded memory, and writes the replies.
 *
 * Flow control: reading from the client pauses while {@link MAX_IN_FLIGHT} requests or
 * {@link MAX_IN_FLIGHT_BYTES} of read/write data are in progress, or while
 * {@link MAX_QUEUED_OUTPUT} of replies wait for the channel window; the paused stream stops
 * ssh2's window adjustments, so the client cannot send more than one channel window (2 MiB)
 * beyond that.
 *
 * @see draft-ietf-secsh-filexfer-02
 * @internal
 * @module
 */
import type { Session } from '../session.js';
import { statsToAttrs } from './attrs.js';
import { FXP, MAX_HANDLES, MAX_IN_FLIGHT, MAX_IN_FLIGHT_BYTES, MAX_PACKET, SftpStatus } from './constants.js';
import { DirListing } from './dir.js';
import { SftpStatusError, toStatus } from './errors.js';
import { runExtension, versionExtensions } from './extensions.js';
import * as ops from './ops.js';
import {
  BadMessage,
  encodeAttrsReply,
  encodeHandle,
  encodeName,
  encodeStatus,
  Framer,
  PacketReader,
} from './protocol.js';
import { ReplyQueue } from './output.js';
import type { Scope } from './scheduler.js';
import { Scheduler } from './scheduler.js';

/** An open file or directory. */
export type Handle = ({ kind: 'file'; write: boolean; read: boolean } & ops.OpenFile) | { kind: 'dir'; dir: DirListing };

const OK = (id: number): Buffer => encodeStatus(id, SftpStatus.OK, 'Success');

export class SftpEngine {
  readonly handles = new Map<number, Handle>();
  private readonly out: ReplyQueue;
  private readonly framer: Framer;
  private readonly sched = new Scheduler(() => this.pump());
  private nextHandle = 1;
  private paused = false;
  private initialized = false;
  private inputEnded = false;
  private stopped = false;
  private exitCode = 0;
  private finish!: () => void;
  private readonly finished = new Promise<void>((resolve) => (this.finish = resolve));

  constructor(
    readonly ctx: ops.OpContext,
    readonly maxRead: number,
  ) {
    this.out = new ReplyQueue(ctx.session, () => this.pump());
    this.framer = new Framer(MAX_PACKET, (len) => this.out.buffer(len));
  }

  private get session(): Session {
    return this.ctx.session;
  }

  /** Serves until the client's EOF (then 0) or the channel closes; closes every handle. Returns the exit code. */
  async run(): Promise<number> {
    const s = this.session;
    const onData = (chunk: Buffer): void => {
      this.framer.push(chunk);
      this.pump();
    };
    const onEnd = (): void => {
      this.inputEnded = true;
      this.pump();
    };
    const onAbort = (): void => this.stop(0);
    s.on('data', onData);
    s.on('end', onEnd);
    s.signal.addEventListener('abort', onAbort, { once: true });
    if (s.signal.aborted) this.stop(0);
    try {
      await this.finished;
      await this.sched.idle();
    } finally {
      this.out.flush();
      s.off('data', onData);
      s.off('end', onEnd);
      s.signal.removeEventListener('abort', onAbort);
      const open = [...this.handles.values()];
      this.handles.clear();
      await Promise.all(open.map((h) => (h.kind === 'file' ? h.fh.close() : h.dir.close()).catch(() => undefined)));
    }
    return this.exitCode;
  }

  private stop(code: number): void {
    if (this.stopped) return;
    this.stopped = true;
    this.exitCode = code;
    this.finish();
  }

  private blocked(): boolean {
    const o = this.out;
    return this.stopped || o.outputFull || o.pending >= MAX_IN_FLIGHT || o.bytes >= MAX_IN_FLIGHT_BYTES;
  }

  /** Starts the requests that may start; pauses or resumes the client's input accordingly. */
  private pump(): void {
    while (!this.blocked()) {
      let pkt: Buffer | undefined;
      try {
        pkt = this.framer.next();
      } catch {
        return this.stop(2); // unframeable: the stream cannot be followed any more
      }
      if (!pkt) break;
      this.dispatch(pkt);
    }
    if (this.stopped) return;
    const block = this.blocked();
    if (block && !this.paused) {
      this.paused = true;
      this.session.pause();
    } else if (!block && this.paused) {
      this.paused = false;
      this.session.resume();
    }
    if (this.inputEnded && this.out.pending === 0 && !block) this.stop(0);
  }

  /** Runs one request under `scope`; `fn` returns the reply, a throw becomes a STATUS. */
  private start(id: number, scope: Scope, bytes: number, fn: () => Promise<Buffer>): void {
    const slot = this.out.add(bytes);
    this.sched.run(scope, async () => {
      let reply: Buffer;
      try {
        reply = await fn();
      } catch (err) {
        ops.reportUnexpected(this.session, err);
        const { status, message } = toStatus(err);
        reply = encodeStatus(id, status, message);
      }
      this.out.settle(slot, reply);
    });
  }

  /** Queues a reply computed at once. */
  private reply(buf: Buffer): void {
    this.out.now(buf);
  }

  private dispatch(pkt: Buffer): void {
    const type = pkt[0]!;
    if (!this.initialized) {
      if (type !== FXP.INIT || pkt.length < 5) return this.stop(2);
      this.initialized = true;
      this.reply(versionExtensions(this.ctx));
      return;
    }
    if (pkt.length < 5) return this.stop(2);
    const id = pkt.readUInt32BE(1);
    const r = new PacketReader(pkt, 5);
    try {
      this.request(type, id, r);
    } catch (err) {
      const { status, message } = err instanceof BadMessage ? { status: SftpStatus.BAD_MESSAGE, message: 'Bad message' } : toStatus(err);
      this.reply(encodeStatus(id, status, message));
    }
  }

  private handleId(b: Buffer): number {
    return b.length === 4 ? b.readUInt32BE(0) : -1;
  }

  private handle(n: number): Handle {
    const h = this.handles.get(n);
    if (!h) throw new SftpStatusError(SftpStatus.FAILURE, 'Invalid handle');
    return h;
  }

  private file(n: number): Extract<Handle, { kind: 'file' }> {
    const h = this.handle(n);
    if (h.kind !== 'file') throw new SftpStatusError(SftpStatus.FAILURE, 'Is a directory');
    return h;
  }

  private addHandle(h: Handle): Buffer {
    let n = this.nextHandle;
    while (this.handles.has(n)) n = (n + 1) >>> 0 || 1;
    this.nextHandle = (n + 1) >>> 0 || 1;
    this.handles.set(n, h);
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(n, 0);
    return b;
  }

  private checkHandleRoom(): void {
    if (this.handles.size >= MAX_HANDLES) throw new SftpStatusError(SftpStatus.FAILURE, 'Too many open handles');
  }

  /** Parses one request (synchronously, so a BadMessage is answered at once) and starts it. */
  private request(type: number, id: number, r: PacketReader): void {
    const ctx = this.ctx;
    const global: Scope = { kind: 'global' };
    switch (type) {
      case FXP.READ: {
        const n = this.handleId(r.bytes());
        const offset = r.uint64();
        const len = Math.min(r.uint32(), this.maxRead);
        const scope: Scope = { kind: 'handle', handle: n, barrier: false, start: offset, end: offset + len, write: false };
        return this.start(id, scope, len, () => this.read(id, n, offset, len));
      }
      case FXP.WRITE: {
        const n = this.handleId(r.bytes());
        const offset = r.uint64();
        const data = r.bytes();
        const h = this.handles.get(n);
        // Appends go in arrival order (their offsets mean nothing).
        const scope: Scope =
          h?.kind === 'file' && h.append
            ? { kind: 'handle', handle: n, barrier: true }
            : { kind: 'handle', handle: n, barrier: false, start: offset, end: offset + data.length, write: true };
        return this.start(id, scope, data.length, () => this.write(id, n, offset, data).finally(() => this.out.recycle(data)));
      }
      case FXP.OPEN: {
        const path = r.string();
        const pflags = r.uint32();
        const attrs = r.attrs();
        return this.start(id, global, 0, async () => {
          this.checkHandleRoom();
          const f = await ops.openFile(ctx, path, pflags, attrs);
          const op = ops.openOperation(path, pflags);
          return encodeHandle(id, this.addHandle({ kind: 'file', read: op.read, write: op.write || f.append, ...f }));
        });
      }
      case FXP.OPENDIR: {
        const path = r.string();
        return this.start(id, global, 0, async () => {
          this.checkHandleRoom();
          return encodeHandle(id, this.addHandle({ kind: 'dir', dir: await DirListing.open(ctx, path) }));
        });
      }
      case FXP.CLOSE: {
        const n = this.handleId(r.bytes());
        return this.start(id, { kind: 'handle', handle: n, barrier: true }, 0, async () => {
          const h = this.handle(n);
          this.handles.delete(n);
          if (h.kind === 'file') await h.fh.close();
          else await h.dir.close();
          return OK(id);
        });
      }
      case FXP.READDIR: {
        const n = this.handleId(r.bytes());
        return this.start(id, { kind: 'handle', handle: n, barrier: true }, 0, async () => {
          const h = this.handle(n);
          if (h.kind !== 'dir') throw new SftpStatusError(SftpStatus.FAILURE, 'Not a directory');
          const entries = await h.dir.next();
          return entries ? encodeName(id, entries) : encodeStatus(id, SftpStatus.EOF, 'End of file');
        });
      }
      case FXP.FSTAT: {
        const n = this.handleId(r.bytes());
        return this.start(id, { kind: 'handle', handle: n, barrier: true }, 0, async () => {
          const h = this.handle(n);
          const st = h.kind === 'file' ? await h.fh.stat() : await h.dir.stat();
          return encodeAttrsReply(id, statsToAttrs(st));
        });
      }
      case FXP.FSETSTAT: {
        const n = this.handleId(r.bytes());
        const attrs = r.attrs();
        return this.start(id, { kind: 'handle', handle: n, barrier: true }, 0, async () => {
          ops.writable(ctx);
          const h = this.handle(n);
          await ops.applyAttrs(ctx, h.kind === 'file' ? h.fh : h.dir.path, attrs);
          return OK(id);
        });
      }
      case FXP.STAT:
      case FXP.LSTAT: {
        const path = r.string();
        return this.start(id, global, 0, async () =>
          encodeAttrsReply(id, statsToAttrs(await ops.statPath(ctx, path, type === FXP.STAT))),
        );
      }
      case FXP.SETSTAT: {
        const path = r.string();
        const attrs = r.attrs();
        return this.start(id, global, 0, async () => (await ops.setstatPath(ctx, path, attrs), OK(id)));
      }
      case FXP.REMOVE: {
        const path = r.string();
        return this.start(id, global, 0, async () => (await ops.removePath(ctx, path), OK(id)));
      }
      case FXP.MKDIR: {
        const path = r.string();
        const attrs = r.attrs();
        return this.start(id, global, 0, async () => (await ops.mkdirPath(ctx, path, attrs), OK(id)));
      }
      case FXP.RMDIR: {
        const path = r.string();
        return this.start(id, global, 0, async () => (await ops.rmdirPath(ctx, path), OK(id)));
      }
      case FXP.REALPATH: {
        const path = r.string();
        return this.start(id, global, 0, async () => {
          const p = await ops.realPath(ctx, path);
          return encodeName(id, [{ filename: p, longname: p, attrs: {} }]);
        });
      }
      case FXP.READLINK: {
        const path = r.string();
        return this.start(id, global, 0, async () => {
          const target = await ops.readlinkPath(ctx, path);
          return encodeName(id, [{ filename: target, longname: target, attrs: {} }]);
        });
      }
      case FXP.RENAME: {
        const from = r.string();
        const to = r.string();
        return this.start(id, global, 0, async () => (await ops.renamePath(ctx, from, to, false), OK(id)));
      }
      case FXP.SYMLINK: {
        // OpenSSH's order (target first, then the link), which clients follow; the draft has it reversed.
        const target = r.string();
        const link = r.string();
        return this.start(id, global, 0, async () => (await ops.symlinkPath(ctx, target, link), OK(id)));
      }
      case FXP.EXTENDED: {
        const name = r.string();
        return runExtension(this, id, name, r, (scope, fn) => this.start(id, scope, 0, fn));
      }
      default:
        this.reply(encodeStatus(id, SftpStatus.OP_UNSUPPORTED, 'Operation unsupported'));
    }
  }

  /** `handle` for extensions. */
  fileHandle(n: number): Extract<Handle, { kind: 'file' }> {
    return this.file(n);
  }

  /** The handle number in a handle string. */
  parseHandle(b: Buffer): number {
    return this.handleId(b);
  }

  private async read(id: number, n: number, offset: number, len: number): Promise<Buffer> {
    const h = this.file(n);
    if (!h.read) throw new SftpStatusError(SftpStatus.PERMISSION_DENIED, 'File not opened for reading');
    // Room for the DATA header in front, so the reply goes out without a copy.
    const buf = this.out.buffer(13 + len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await h.fh.read(buf, 13 + got, len - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got === 0) {
      this.out.recycle(buf);
      return encodeStatus(id, SftpStatus.EOF, 'End of file');
    }
    buf.writeUInt32BE(9 + got, 0);
    buf[4] = FXP.DATA;
    buf.writeUInt32BE(id, 5);
    buf.writeUInt32BE(got, 9);
    return buf.subarray(0, 13 + got);
  }

  private async write(id: number, n: number, offset: number, data: Buffer): Promise<Buffer> {
    const h = this.file(n);
    if (!h.write) throw new SftpStatusError(SftpStatus.PERMISSION_DENIED, 'File not opened for writing');
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await h.fh.write(data, done, data.length - done, offset + done);
      if (bytesWritten === 0) throw new SftpStatusError(SftpStatus.FAILURE, 'Short write');
      done += bytesWritten;
    }
    return OK(id);
  }
}
