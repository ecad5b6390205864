// Types for the parts of ssh2 1.17.0 that are not public. Only src/internal/ssh2-compat.ts
// imports these modules; test/unit/ssh2-compat.test.ts checks that they still look like this.

declare module 'ssh2/lib/protocol/handlers.js' {
  type MessageHandler = (proto: object, payload: Buffer) => unknown;
  const handlers: Array<MessageHandler | undefined>;
  export default handlers;
}

declare module 'ssh2/lib/protocol/utils.js' {
  const utils: {
    sendPacket(proto: object, packet: Buffer, bypass?: boolean): boolean;
  };
  export default utils;
}

declare module 'ssh2/lib/protocol/constants.js' {
  const constants: {
    MESSAGE: Record<string, number>;
    DISCONNECT_REASON: Record<string, number>;
    CHANNEL_OPEN_FAILURE: Record<string, number>;
  };
  export default constants;
}

declare module 'ssh2/lib/Channel.js' {
  import type { Duplex } from 'node:stream';
  const channel: {
    Channel: new (client: object, info: object, opts: { server: boolean }) => Duplex;
    MAX_WINDOW: number;
    PACKET_SIZE: number;
  };
  export default channel;
}
