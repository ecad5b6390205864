/**
 * Minimal SSH wire-format reader and writer (RFC 4251 §5) for the messages glidessh parses
 * itself. The reader never throws: a field that does not fit returns `undefined`, and once
 * a read failed every later read fails too, so a caller checks only its last field.
 *
 * @internal
 * @module
 */

export class WireReader {
  private pos: number;
  private failed = false;

  constructor(
    private readonly buf: Buffer,
    start = 0,
  ) {
    this.pos = start;
  }

  /** Bytes left to read. */
  get remaining(): number {
    return this.failed ? 0 : this.buf.length - this.pos;
  }

  /** Whether every read so far fitted. */
  get ok(): boolean {
    return !this.failed;
  }

  private fail(): undefined {
    this.failed = true;
    return undefined;
  }

  byte(): number | undefined {
    if (this.failed || this.pos + 1 > this.buf.length) return this.fail();
    return this.buf[this.pos++];
  }

  bool(): boolean | undefined {
    const b = this.byte();
    return b === undefined ? undefined : b !== 0;
  }

  uint32(): number | undefined {
    if (this.failed || this.pos + 4 > this.buf.length) return this.fail();
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A `string` field as raw bytes (a view, not a copy). */
  bytes(): Buffer | undefined {
    const len = this.uint32();
    if (len === undefined || len > this.buf.length - this.pos) return this.fail();
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** A `string` field decoded as UTF-8. */
  string(): string | undefined {
    const b = this.bytes();
    return b === undefined ? undefined : b.toString('utf8');
  }

  /** Everything not read yet (a view). */
  rest(): Buffer {
    if (this.failed) return Buffer.alloc(0);
    const out = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return out;
  }
}

/** Builds a payload from SSH wire fields. */
export class WireWriter {
  private readonly parts: Buffer[] = [];

  byte(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }

  bool(v: boolean): this {
    return this.byte(v ? 1 : 0);
  }

  uint32(v: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(v >>> 0, 0);
    this.parts.push(b);
    return this;
  }

  string(v: string | Buffer): this {
    const b = typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
    this.uint32(b.length);
    this.parts.push(b);
    return this;
  }

  raw(v: Buffer): this {
    this.parts.push(v);
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}
