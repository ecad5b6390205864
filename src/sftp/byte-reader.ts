/**
 * A pull reader over a Readable for line-and-byte protocols (SCP): lines, single bytes and
 * raw chunks, with the stream paused while more than {@link HIGH} bytes wait.
 *
 * @internal
 * @module
 */
import type { Readable } from 'node:stream';

const HIGH = 1024 * 1024;
const LOW = 256 * 1024;

export class ByteReader {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private wake: (() => void) | undefined;
  private readonly onData = (c: Buffer): void => {
    this.chunks.push(c);
    this.size += c.length;
    if (this.size > HIGH) this.stream.pause();
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };

  constructor(private readonly stream: Readable) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
  }

  /** Stops reading (the stream is left paused). */
  close(): void {
    this.stream.off('data', this.onData);
    this.stream.off('end', this.onEnd);
    this.stream.off('close', this.onEnd);
    this.stream.pause();
    this.onEnd();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Waits for at least one byte; false at the end of the stream. */
  private async fill(): Promise<boolean> {
    while (this.size === 0 && !this.ended) await new Promise<void>((r) => (this.wake = r));
    return this.size > 0;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length <= n) {
      out = first;
      this.chunks.shift();
    } else {
      out = first.subarray(0, n);
      this.chunks[0] = first.subarray(n);
    }
    this.size -= out.length;
    if (this.size < LOW && this.stream.isPaused() && !this.ended) this.stream.resume();
    return out;
  }

  /** The next byte, or undefined at the end. */
  async byte(): Promise<number | undefined> {
    if (!(await this.fill())) return undefined;
    return this.take(1)[0];
  }

  /** Up to `max` bytes as they arrived (at least one), or undefined at the end. */
  async chunk(max: number): Promise<Buffer | undefined> {
    if (!(await this.fill())) return undefined;
    return this.take(Math.min(max, this.chunks[0]!.length));
  }

  /** Up to `max` bytes: everything buffered so far, in one buffer (at least one byte), or undefined at the end. */
  async upTo(max: number): Promise<Buffer | undefined> {
    if (!(await this.fill())) return undefined;
    if (this.chunks.length === 1 || this.chunks[0]!.length >= max) return this.take(Math.min(max, this.chunks[0]!.length));
    const parts: Buffer[] = [];
    let n = 0;
    while (n < max && this.size > 0) {
      const part = this.take(Math.min(max - n, this.chunks[0]!.length));
      parts.push(part);
      n += part.length;
    }
    return Buffer.concat(parts, n);
  }

  /**
   * A line without its `\n`, or undefined at the end of the stream (a partial last line
   * counts as the end). Lines longer than `max` bytes are an error.
   */
  async line(max = 8192): Promise<string | undefined> {
    const parts: Buffer[] = [];
    let len = 0;
    for (;;) {
      if (!(await this.fill())) return undefined;
      const first = this.chunks[0]!;
      const nl = first.indexOf(0x0a);
      const piece = this.take(nl === -1 ? first.length : nl + 1);
      parts.push(piece);
      len += piece.length;
      if (nl !== -1) break;
      if (len > max) throw new Error('line too long');
    }
    return Buffer.concat(parts, len).subarray(0, len - 1).toString('utf8');
  }
}
