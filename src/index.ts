/**
 * glidessh: build SSH applications in Node.js the way gliderlabs/ssh does in Go.
 *
 * @example
 * ```ts
 * import { listenAndServe } from 'glidessh';
 *
 * await listenAndServe('127.0.0.1:2222', async (s) => {
 *   s.write(`Hello ${s.user}\n`);
 *   await s.exit(0);
 * });
 * ```
 * @module glidessh
 */
export { Server, listenAndServe, serve } from './server.js';
export type { ServerEvents } from './server.js';
export { Session } from './session.js';
export type { SessionEvents } from './session.js';
export type { Context } from './context.js';
export { defaultSessionHandler } from './connection.js';
export { ChannelRejectReason } from './channel.js';
export type { Channel, NewChannel } from './channel.js';
export { compose } from './middleware.js';
export { DEFAULTS } from './options.js';
export type { ServerOptions } from './options.js';
export type {
  Algorithms,
  BannerHandler,
  ChannelHandler,
  ConnCallback,
  ConnectionCloseCallback,
  ConnectionFailedCallback,
  ForwardOrigin,
  GlobalRequest,
  Handler,
  KeyboardInteractiveHandler,
  LocalPortForwardingCallback,
  Middleware,
  PasswordHandler,
  PtyCallback,
  PublicKeyHandler,
  RequestHandler,
  RequestReply,
  ReversePortForwardingCallback,
  ServerConfig,
  ServerConfigCallback,
  SessionRequestCallback,
  SubsystemHandler,
} from './hooks.js';
export type {
  KeyboardInteractiveChallenge,
  MaybePromise,
  Permissions,
  Pty,
  Question,
  Signal,
  Window,
} from './types.js';
export { keysEqual, parseAuthorizedKey, parseAuthorizedKeys, parsePublicKey } from './keys.js';
export type { AuthorizedKey, PublicKey } from './keys.js';
export { encodeTerminalModes, parseTerminalModes, TERMINAL_MODE_NAMES } from './pty.js';
export { splitCommand } from './command.js';
export {
  AuthTriesExceededError,
  ChannelClosedError,
  ConnectionClosedError,
  ConnectionRefusedError,
  ERROR_CODES,
  GlidesshError,
  HookError,
  InvalidOptionError,
  KeyParseError,
  ServerClosedError,
  SessionExitedError,
  StrictKexRequiredError,
  TimeoutError,
} from './errors.js';
export type { TimeoutKind } from './errors.js';
export type { MaxStartups, PenaltyOptions } from './limits.js';
export { ProxyProtocolError, parseProxyHeader } from './proxy-protocol.js';
export type { ProxyHeader, ProxyProtocolOptions } from './proxy-protocol.js';
