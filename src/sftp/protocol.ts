/**
 * SFTP packet framing and encoding: a {@link Framer} that cuts the client's byte stream into
 * packets (without copying when a packet lies in one chunk), a {@link PacketReader} for
 * request fields, and the reply encoders.
 *
 * @see draft-ietf-secsh-filexfer-02 §3
 * @internal
 * @module
 */
import { attrsLength, decodeAttrs, encodeAttrs, type SftpAttrs } from './attrs.js';
import { FXP } from './constants.js';

/** A request that does not parse. */
export class BadMessage extends Error {}

/** Cuts a byte stream into `uint32 length || payload` packets. */
export class Framer {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /**
   * @param maxPacket - longest payload accepted
   * @param alloc - where a packet that spans chunks is assembled (a pool, for big WRITEs)
   */
  constructor(
    private readonly maxPacket: number,
    private readonly alloc: (len: number) => Buffer = (len) => Buffer.allocUnsafe(len),
  ) {}

  /** Bytes held. */
  get size(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next complete packet's payload (type byte first), `undefined` when more bytes are
   * needed. Throws {@link BadMessage} for a packet longer than the maximum.
   */
  next(): Buffer | undefined {
    if (this.buffered < 4) return undefined;
    const first = this.chunks[0]!;
    const len = first.length >= 4 ? first.readUInt32BE(0) : this.peekLength();
    if (len > this.maxPacket || len === 0) throw new BadMessage(`bad packet length ${len}`);
    if (this.buffered < 4 + len) return undefined;
    if (first.length >= 4 + len) {
      const payload = first.subarray(4, 4 + len);
      this.consume(4 + len);
      return payload;
    }
    const out = this.alloc(len);
    let skip = 4;
    let filled = 0;
    while (filled < len) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length - skip, len - filled);
      c.copy(out, filled, skip, skip + take);
      filled += take;
      this.consume(skip + take);
      skip = 0;
    }
    return out;
  }

  private peekLength(): number {
    const head = Buffer.allocUnsafe(4);
    let n = 0;
    for (const c of this.chunks) {
      const take = Math.min(4 - n, c.length);
      c.copy(head, n, 0, take);
      n += take;
      if (n === 4) break;
    }
    return head.readUInt32BE(0);
  }

  private consume(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      if (c.length <= n) {
        n -= c.length;
        this.chunks.shift();
      } else {
        this.chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }
}

/** Reads request fields; a field that does not fit throws {@link BadMessage}. */
export class PacketReader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
  ) {
    this.pos = start;
  }

  uint32(): number {
    if (this.pos + 4 > this.buf.length) throw new BadMessage('truncated');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint64(): number {
    if (this.pos + 8 > this.buf.length) throw new BadMessage('truncated');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BadMessage('offset too large');
    return Number(v);
  }

  bytes(): Buffer {
    const len = this.uint32();
    if (len > this.buf.length - this.pos) throw new BadMessage('truncated');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  string(): string {
    return this.bytes().toString('utf8');
  }

  attrs(): SftpAttrs {
    const r = decodeAttrs(this.buf, this.pos);
    if (!r) throw new BadMessage('truncated attrs');
    this.pos = r.end;
    return r.attrs;
  }
}

/** A name entry of an SSH_FXP_NAME reply. */
export interface NameEntry {
  filename: string;
  longname: string;
  attrs: SftpAttrs;
}

/** `uint32 length, byte type, uint32 id` into a buffer of `total` bytes. */
function header(type: number, id: number, total: number): Buffer {
  const b = Buffer.allocUnsafe(total);
  b.writeUInt32BE(total - 4, 0);
  b[4] = type;
  b.writeUInt32BE(id >>> 0, 5);
  return b;
}

/** SSH_FXP_STATUS with a message and an empty language tag. */
export function encodeStatus(id: number, code: number, message: string): Buffer {
  const msgLen = Buffer.byteLength(message);
  const b = header(FXP.STATUS, id, 9 + 4 + 4 + msgLen + 4);
  b.writeUInt32BE(code, 9);
  b.writeUInt32BE(msgLen, 13);
  b.write(message, 17, 'utf8');
  b.writeUInt32BE(0, 17 + msgLen);
  return b;
}

/** SSH_FXP_HANDLE. */
export function encodeHandle(id: number, handle: Buffer): Buffer {
  const b = header(FXP.HANDLE, id, 9 + 4 + handle.length);
  b.writeUInt32BE(handle.length, 9);
  handle.copy(b, 13);
  return b;
}

/** SSH_FXP_DATA, or SSH_FXP_EXTENDED_REPLY: a type, an id and a body. */
export function encodeData(id: number, data: Buffer, type: number = FXP.DATA): Buffer {
  const withLength = type === FXP.DATA;
  const b = header(type, id, 9 + (withLength ? 4 : 0) + data.length);
  if (withLength) b.writeUInt32BE(data.length, 9);
  data.copy(b, withLength ? 13 : 9);
  return b;
}

/** SSH_FXP_ATTRS. */
export function encodeAttrsReply(id: number, attrs: SftpAttrs): Buffer {
  const b = header(FXP.ATTRS, id, 9 + attrsLength(attrs));
  encodeAttrs(attrs, b, 9);
  return b;
}

/** SSH_FXP_NAME. */
export function encodeName(id: number, entries: readonly NameEntry[]): Buffer {
  let total = 9 + 4;
  const encoded = entries.map((e) => {
    const f = Buffer.from(e.filename, 'utf8');
    const l = Buffer.from(e.longname, 'utf8');
    total += 8 + f.length + l.length + attrsLength(e.attrs);
    return { f, l, attrs: e.attrs };
  });
  const b = header(FXP.NAME, id, total);
  let pos = b.writeUInt32BE(entries.length, 9);
  for (const e of encoded) {
    pos = b.writeUInt32BE(e.f.length, pos);
    pos += e.f.copy(b, pos);
    pos = b.writeUInt32BE(e.l.length, pos);
    pos += e.l.copy(b, pos);
    pos = encodeAttrs(e.attrs, b, pos);
  }
  return b;
}

/** Encodes `uint64` fields (extension replies). */
export function uint64s(values: ReadonlyArray<number | bigint>): Buffer {
  const b = Buffer.allocUnsafe(values.length * 8);
  values.forEach((v, i) => b.writeBigUInt64BE(BigInt(v), i * 8));
  return b;
}

/** SSH_FXP_VERSION 3 with `name → data` extension pairs. */
export function encodeVersion(extensions: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts = extensions.flatMap(([n, d]) => [n, d].map((s) => Buffer.from(s, 'utf8')));
  const total = 9 + parts.reduce((n, p) => n + 4 + p.length, 0);
  const b = Buffer.allocUnsafe(total);
  b.writeUInt32BE(total - 4, 0);
  b[4] = FXP.VERSION;
  b.writeUInt32BE(3, 5);
  let pos = 9;
  for (const p of parts) {
    pos = b.writeUInt32BE(p.length, pos);
    pos += p.copy(b, pos);
  }
  return b;
}
