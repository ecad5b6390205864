/**
 * Channel opens as handed to a {@link ChannelHandler}.
 *
 * @module
 */
import type { Duplex, Writable } from 'node:stream';
import {
  acceptChannel,
  connectionStream,
  rejectChannel,
  type ChannelFactory,
  type RawChannelOpen,
  type Ssh2Channel,
  type Ssh2Connection,
} from './internal/ssh2-compat.js';

/**
 * Reason codes for refusing a channel open.
 * @see RFC 4254 §5.1
 */
export const ChannelRejectReason = {
  /** Not allowed by policy. */
  ADMINISTRATIVELY_PROHIBITED: 1,
  /** The target could not be reached. */
  CONNECT_FAILED: 2,
  /** No handler for the channel type. */
  UNKNOWN_CHANNEL_TYPE: 3,
  /** Out of channels or another resource. */
  RESOURCE_SHORTAGE: 4,
} as const;

/** One of {@link ChannelRejectReason}'s values. */
export type ChannelRejectReason = (typeof ChannelRejectReason)[keyof typeof ChannelRejectReason];

/** An open SSH channel: reading gives the client's data, writing sends data, `end()` sends EOF. */
export interface Channel extends Duplex {
  /** Extended data (type 1, stderr) to the client. */
  readonly stderr: Writable;
}

/**
 * A channel the client asked to open. Exactly one of `accept()` or `reject()` takes effect;
 * later calls are ignored.
 */
export interface NewChannel {
  /** The channel type, e.g. `"session"` or `"direct-tcpip"`. */
  readonly type: string;
  /** The type-specific data of the open request, unparsed. */
  readonly extraData: Buffer;
  /** Accepts the channel. Returns `undefined` if it was already answered or ids ran out. */
  accept(): Channel | undefined;
  /** Refuses the channel with a reason code and a message the client may show. */
  reject(reason: ChannelRejectReason, message?: string): void;
  /** Whether `accept()` or `reject()` was called. */
  readonly answered: boolean;
}

/** @internal */
export class PendingChannel implements NewChannel {
  answered = false;
  /** The ssh2 channel once accepted. */
  channel: Ssh2Channel | undefined;

  constructor(
    private readonly conn: Ssh2Connection,
    private readonly open: RawChannelOpen,
  ) {}

  get type(): string {
    return this.open.type;
  }

  get extraData(): Buffer {
    return this.open.data;
  }

  accept(): Channel | undefined {
    return this.acceptAs();
  }

  /** Accepts with `create` building the channel object (a Session, say). */
  acceptAs(create?: ChannelFactory): Ssh2Channel | undefined {
    if (this.answered) return undefined;
    this.answered = true;
    if (connectionStream(this.conn).destroyed) return undefined;
    this.channel = acceptChannel(this.conn, this.open, this.open.type, create);
    if (!this.channel) {
      rejectChannel(this.conn, this.open, ChannelRejectReason.RESOURCE_SHORTAGE, 'no free channel ids');
      return undefined;
    }
    return this.channel;
  }

  reject(reason: ChannelRejectReason, message = ''): void {
    if (this.answered) return;
    this.answered = true;
    if (connectionStream(this.conn).destroyed) return;
    rejectChannel(this.conn, this.open, reason, message);
  }
}
