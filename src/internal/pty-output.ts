/**
 * Stdout of a session with a pty: `\n` becomes `\r\n` ({@link CrlfEncoder}), and output
 * bigger than one packet goes out in whole packets.
 *
 * Converted output is a little longer than what was written (81 bytes per 80-byte line), so a
 * 64 KiB write no longer fits two 32 KiB packets and each write would cost a third, nearly
 * empty packet (a cipher call and a socket write: about 10 % of the throughput). A write
 * longer than a packet therefore sends whole packets and holds the partial rest back; the
 * next write in the same tick sends it in front of its own output, and otherwise it goes out
 * on the next tick. A write that fits one packet is sent at once, so interactive output is
 * never delayed.
 *
 * @module
 */
import { CrlfEncoder } from '../pty.js';
import { crlfKernel, KERNEL_MAX_INPUT, KERNEL_MAX_PREFIX, KERNEL_OUT } from './crlf-wasm.js';
import { afterTransportDrain, channelWritable, ownPendingChunks, writeChannelData, type Ssh2Channel, type Ssh2Connection } from './ssh2-compat.js';

export class PtyOutput {
  private readonly encoder = new CrlfEncoder();
  /** Converted output held back (less than one packet), owned. */
  private tail: Buffer | undefined;
  /** A write or a tail flush is in ssh2, waiting for window space or a drained transport. */
  private busy = false;
  /** Work that waits until `busy` ends (at most one write, plus flush requests). */
  private waiting: Array<() => void> = [];
  private flushScheduled = false;

  constructor(
    private readonly channel: Ssh2Channel,
    private readonly conn: Ssh2Connection,
  ) {}

  /** Converts and sends one chunk; `cb` runs once ssh2 took all of it but the held-back rest. */
  write(chunk: Buffer, cb: () => void): void {
    if (!channelWritable(this.channel)) return cb();
    if (this.busy) {
      this.waiting.push(() => this.write(chunk, cb));
      return;
    }
    const prefix = this.tail;
    this.tail = undefined;
    const packet = this.channel.outgoing.packetSize;
    const kernel = crlfKernel();
    if (kernel && chunk.length <= KERNEL_MAX_INPUT && (prefix?.length ?? 0) <= KERNEL_MAX_PREFIX) {
      // The fast path: convert into the kernel's memory, put the held-back rest in front of
      // it, keep the new rest, and hand ssh2 one view of the whole packets.
      let start = KERNEL_OUT;
      if (prefix) start -= prefix.copy(kernel.bytes, KERNEL_OUT - prefix.length);
      let end = KERNEL_OUT + this.encoder.convertRaw(kernel, chunk);
      end -= this.holdBack(kernel.bytes, start, end, packet);
      return this.send(kernel.bytes.subarray(start, end), cb);
    }
    const out = this.encoder.encodeTransient(chunk, prefix);
    this.send(out.subarray(0, out.length - this.holdBack(out, 0, out.length, packet)), cb);
  }

  /** Keeps the partial last packet of `buf[start, end)` (if longer than a packet) as the tail; returns its length. */
  private holdBack(buf: Buffer, start: number, end: number, packet: number): number {
    const rest = end - start > packet ? (end - start) % packet : 0;
    if (rest > 0) {
      this.tail = Buffer.allocUnsafe(rest);
      buf.copy(this.tail, 0, end - rest, end);
      this.scheduleFlush();
    }
    return rest;
  }

  /** Sends what is held back now (before EOF, before stderr output); `cb` runs once ssh2 took it. */
  flush(cb: () => void = noop): void {
    if (this.busy) {
      this.waiting.push(() => this.flush(cb));
      return;
    }
    const tail = this.tail;
    this.tail = undefined;
    if (!tail || !channelWritable(this.channel)) return cb();
    this.send(tail, cb);
  }

  /** Whether output is held back. */
  get holding(): boolean {
    return this.tail !== undefined;
  }

  /** Hands `data` to ssh2's window-aware writer; while ssh2 holds any of it, later work waits. */
  private send(data: Buffer, cb: () => void): void {
    this.busy = true;
    let sync = true;
    writeChannelData(
      this.channel,
      data,
      afterTransportDrain(this.conn, () => {
        this.busy = false;
        cb();
        if (!sync) this.runWaiting();
      }),
    );
    sync = false;
    const scratch = crlfKernel()?.memory;
    if (this.busy && scratch) ownPendingChunks(this.channel, scratch);
    if (!this.busy) this.runWaiting();
  }

  private runWaiting(): void {
    while (!this.busy && this.waiting.length > 0) this.waiting.shift()!();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }
}

function noop(): void {}
