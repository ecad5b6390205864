/**
 * Stdout of a session with a pty: `\n` becomes `\r\n` ({@link CrlfEncoder}), and output
 * bigger than one packet goes out in whole packets.
 *
 * Converted output is a little longer than what was written (81 bytes per 80-byte line), so a
 * 64 KiB write no longer fits two 32 KiB packets and each write would cost a third, nearly
 * empty packet (a cipher call and a socket write: about 10 % of the throughput). A write
 * longer than a packet therefore sends whole packets and holds the partial rest back; the
 * next write sends it in front of its own output, and otherwise it goes out on the next turn
 * of the event loop (or before stderr output, or before EOF). A write that fits one packet is
 * sent at once, so interactive output is never delayed.
 *
 * @module
 */
import { CrlfEncoder } from '../pty.js';
import { crlfKernel, KERNEL_MAX_INPUT, KERNEL_MAX_PREFIX, KERNEL_OUT } from './crlf-wasm.js';
import {
  afterTransportDrain,
  channelWritable,
  maxPacketSize,
  ownPendingChunks,
  writeChannelData,
  type Ssh2Channel,
  type Ssh2Connection,
} from './ssh2-compat.js';

/** @internal The pty stdout writer of one session (see the module comment). */
export class PtyOutput {
  private readonly encoder = new CrlfEncoder();
  /**
   * Converted output held back (less than one packet): `tailLen` bytes of `tailBuf`, one
   * buffer reused for a whole burst of writes (a new one per write would be an allocation
   * outside the heap each time, and those make V8 collect garbage more often).
   */
  private tailBuf: Buffer | undefined;
  private tailLen = 0;
  /** A write or a tail flush is in ssh2, waiting for window space or a drained transport. */
  private busy = false;
  /** Work that waits until `busy` ends (at most one write, plus flush requests). */
  private waiting: Array<() => void> = [];
  private flushScheduled = false;
  /** A scheduled flush found ssh2 busy: schedule it again once the write went out. */
  private retryFlush = false;

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
    const prefix = this.tailLen > 0 ? this.tailBuf!.subarray(0, this.tailLen) : undefined;
    this.tailLen = 0;
    const packet = maxPacketSize(this.channel);
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
    const out = this.encoder.encodeTransient(chunk, prefix); // a prefix is copied into `out`
    this.send(out.subarray(0, out.length - this.holdBack(out, 0, out.length, packet)), cb);
  }

  /** Keeps the partial last packet of `buf[start, end)` (if longer than a packet) as the tail; returns its length. */
  private holdBack(buf: Buffer, start: number, end: number, packet: number): number {
    const rest = end - start > packet ? (end - start) % packet : 0;
    if (rest > 0) {
      if (!this.tailBuf || this.tailBuf.length < rest) this.tailBuf = Buffer.allocUnsafeSlow(Math.max(rest, Math.min(packet, KERNEL_MAX_PREFIX)));
      this.tailLen = buf.copy(this.tailBuf, 0, end - rest, end);
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
    const tail = this.tailLen > 0 ? this.tailBuf!.subarray(0, this.tailLen) : undefined;
    this.tailLen = 0;
    if (!tail || !channelWritable(this.channel)) return cb();
    this.send(tail, cb);
    this.tailBuf = undefined; // the burst is over: ssh2 copied the tail (or ownPendingChunks did)
  }

  /** Whether output is held back. */
  get holding(): boolean {
    return this.tailLen > 0;
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
    if (this.busy) {
      // ssh2 keeps what did not fit the window as a view: copy it if it is memory we reuse.
      const scratch = crlfKernel()?.memory;
      if (scratch) ownPendingChunks(this.channel, scratch);
      if (this.tailBuf) ownPendingChunks(this.channel, this.tailBuf.buffer);
    }
    if (!this.busy) this.runWaiting();
  }

  private runWaiting(): void {
    while (!this.busy && this.waiting.length > 0) this.waiting.shift()!();
    if (this.retryFlush && !this.busy) {
      this.retryFlush = false;
      this.scheduleFlush();
    }
  }

  /**
   * Sends the rest on the loop's next turn unless a write took it first. While ssh2 still
   * holds a write, it tries again a turn after that write went out: a writer waiting for
   * 'drain' writes again in between, and the rest goes in front of its output, so that the
   * packets stay whole (a short packet would also leave the client's window off by its size,
   * and every window would end in a split packet).
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (this.busy) this.retryFlush = true;
      else this.flush();
    });
  }
}

function noop(): void {}
