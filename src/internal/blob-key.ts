/**
 * What every public key does with its wire blob (fingerprint, authorized_keys form, equality),
 * shared by plain keys (keys.ts) and certificate keys (certs.ts). A leaf module, because those
 * two import each other.
 *
 * @internal
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { PublicKey } from '../keys.js';

/**
 * Whether two keys are the same, comparing their blobs in constant time.
 * @returns `false` if either key is missing (so `keysEqual(undefined, undefined)` is `false`).
 */
export function keysEqual(a?: PublicKey, b?: PublicKey): boolean {
  if (a == null || b == null) return false;
  const [x, y] = [a.marshal(), b.marshal()];
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A key held as its RFC 4253 §6.6 wire blob. */
export abstract class BlobKey {
  readonly #blob: Buffer;

  constructor(
    readonly type: string,
    blob: Buffer,
  ) {
    this.#blob = Buffer.from(blob);
  }

  marshal(): Buffer {
    return Buffer.from(this.#blob);
  }

  fingerprint(): string {
    return `SHA256:${createHash('sha256').update(this.#blob).digest('base64').replace(/=+$/, '')}`;
  }

  toAuthorizedKey(): string {
    return `${this.type} ${this.#blob.toString('base64')}`;
  }

  equals(other: PublicKey | undefined): boolean {
    return keysEqual(this as unknown as PublicKey, other);
  }
}
