/**
 * The reply side of an SFTP session: replies leave in request order, small ones are batched
 * into one channel packet, big buffers are recycled, and the output queued for the channel
 * window is measured so that reading can pause before it grows.
 *
 * @internal
 * @module
 */
import type { Session } from '../session.js';
import { MAX_PACKET, MAX_QUEUED_OUTPUT } from './constants.js';

/** Buffers kept for reuse while a session transfers (256 KiB each; dropped when it goes idle). */
const POOLED_BUFFERS = 24;
/** Size of a pooled buffer, and the smallest need worth a pooled one. */
const POOL_SIZE = MAX_PACKET + 16;
const POOL_MIN = 64 * 1024;
/** Replies shorter than this are batched; a batch is sent once it holds this much. */
const SMALL_REPLY = 4096;
const SMALL_BATCH = 32 * 1024;

/** A request's place in the reply order. */
export interface ReplySlot {
  reply: Buffer | undefined;
  /** READ/WRITE bytes the request holds until it is answered. */
  bytes: number;
}

export class ReplyQueue {
  /** Requests not answered yet, in arrival order. */
  private readonly slots: ReplySlot[] = [];
  private held = 0;
  private full = false;
  private small: Buffer[] = [];
  private smallBytes = 0;
  private smallTimer: NodeJS.Immediate | undefined;
  private readonly pool: Buffer[] = [];
  private readonly owned = new WeakSet<ArrayBufferLike>();

  /** @param room - called when queued output fell below the mark again */
  constructor(
    private readonly session: Session,
    private readonly room: () => void,
  ) {}

  /** Requests waiting for their reply. */
  get pending(): number {
    return this.slots.length;
  }

  /** READ/WRITE bytes held by requests not answered yet. */
  get bytes(): number {
    return this.held;
  }

  /** Whether {@link MAX_QUEUED_OUTPUT} of replies wait for the channel window. */
  get outputFull(): boolean {
    return this.full;
  }

  /** Takes the next place in the reply order. */
  add(bytes: number): ReplySlot {
    const slot: ReplySlot = { reply: undefined, bytes };
    this.slots.push(slot);
    this.held += bytes;
    return slot;
  }

  /**
   * Sets a request's reply and sends every reply that is now next in order: OpenSSH's client
   * assumes request order (a download whose replies were reordered is truncated at the gap).
   */
  settle(slot: ReplySlot, reply: Buffer): void {
    slot.reply = reply;
    while (this.slots.length > 0 && this.slots[0]!.reply) {
      const next = this.slots.shift()!;
      this.held -= next.bytes;
      this.send(next.reply!);
    }
  }

  /** Queues a reply known at once (behind those still being computed). */
  now(reply: Buffer): void {
    this.settle(this.add(0), reply);
  }

  private send(buf: Buffer): void {
    if (this.session.signal.aborted) return;
    // Small replies (STATUS, HANDLE, ATTRS…) that become ready in the same turn of the event
    // loop go out together, in one channel packet and one socket write: an upload's OK
    // statuses would otherwise cost one write through the TCP stack each.
    if (buf.length < SMALL_REPLY) {
      this.small.push(buf);
      this.smallBytes += buf.length;
      if (this.smallBytes >= SMALL_BATCH) this.flush();
      else this.smallTimer ??= setImmediate(() => this.flush());
      return;
    }
    this.flush();
    this.output(buf);
  }

  /** Sends the batched small replies now. */
  flush(): void {
    if (this.smallTimer) clearImmediate(this.smallTimer);
    this.smallTimer = undefined;
    if (this.small.length === 0) return;
    const batch = this.small.length === 1 ? this.small[0]! : Buffer.concat(this.small, this.smallBytes);
    this.small = [];
    this.smallBytes = 0;
    if (!this.session.signal.aborted) this.output(batch);
  }

  private output(buf: Buffer): void {
    // Not 'drain' (which waits until all output left): reading resumes as soon as the queued
    // output is below the mark again, so the pipeline never runs dry.
    this.session.write(buf, () => this.flushed(buf));
    if (this.session.writableLength >= MAX_QUEUED_OUTPUT) this.full = true;
  }

  /** A reply left the session's buffer (ssh2 copied it into packets). */
  private flushed(buf: Buffer): void {
    this.recycle(buf);
    // Nothing more to answer: an idle session holds no buffers.
    if (this.slots.length === 0 && this.session.writableLength === 0) this.pool.length = 0;
    if (this.full && this.session.writableLength < MAX_QUEUED_OUTPUT) {
      this.full = false;
      this.room();
    }
  }

  /**
   * A buffer of `size` bytes: for a full-size READ reply or a large request (a WRITE), a
   * recycled one when there is one. A bulk transfer then makes next to no garbage, which in
   * Node costs more CPU than the copying itself.
   */
  buffer(size: number): Buffer {
    if (size <= POOL_MIN || size > POOL_SIZE) return Buffer.allocUnsafe(size);
    const b = this.pool.pop();
    if (b) return b.subarray(0, size);
    const fresh = Buffer.allocUnsafe(POOL_SIZE);
    if (fresh.byteOffset === 0 && fresh.buffer.byteLength === POOL_SIZE) this.owned.add(fresh.buffer);
    return fresh.subarray(0, size);
  }

  /** Gives back a buffer from {@link buffer} (any view of it) once nothing refers to it any more. */
  recycle(view: Buffer): void {
    const ab = view.buffer;
    if (this.owned.has(ab) && this.pool.length < POOLED_BUFFERS) this.pool.push(Buffer.from(ab, 0, POOL_SIZE));
  }
}
