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
export { generateHostKey } from './host-keys.js';
export type { HostKey } from './host-keys.js';
export { authorizedKeysHandler, parseKeyOptions } from './authorized-keys.js';
export type { AuthorizedKeysHandler, AuthorizedKeysOptions, KeyOptions } from './authorized-keys.js';
export { certificateHandler } from './cert-handler.js';
export type { CertificateHandler, CertificateHandlerOptions, RevocationCheck } from './cert-handler.js';
export { checkCertificate } from './certs.js';
export type { Certificate, CertificateCheck, CertificateProblem } from './certs.js';
export { forcedCommand, isPermitted, PERMISSION_KEYS, portForwardingAllowed } from './restrictions.js';
export type { PermissionsSource, PermitName } from './restrictions.js';
export { passedAuthMethods } from './auth-policy.js';
export type { AuthFailedCallback, AuthFailure, AuthFailureReason } from './hooks.js';
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
export { directTcpipHandler, ForwardedTcpHandler } from './tcpip.js';
export { directStreamLocalHandler, ForwardedUnixHandler } from './streamlocal.js';
export { agentRequested, forwardAgentConnections, newAgentListener } from './agent.js';
export type { AgentListener } from './agent.js';
export type { AgentForwardingCallback, LocalUnixForwardingCallback, ReverseUnixForwardingCallback } from './hooks.js';
export { ForwardingError } from './errors.js';
export { MissingDependencyError, NoPtyError } from './errors.js';
export { activeTerm } from './middleware/active-term.js';
export { accessControl } from './middleware/access-control.js';
export { comment } from './middleware/comment.js';
export { elapsed } from './middleware/elapsed.js';
export { logging } from './middleware/logging.js';
export type { Logger, LoggingOptions, SessionLogFields } from './middleware/logging.js';
export { recover } from './middleware/recover.js';
export type { RecoverOptions } from './middleware/recover.js';
export { RateLimiter, rateLimiter } from './middleware/rate-limiter.js';
export type { RateLimiterOptions } from './middleware/rate-limiter.js';
export { colorLevel } from './color.js';
export type { ColorLevel } from './color.js';
export { createTerminal, sessionEnv, Terminal, TerminalInput, TerminalOutput } from './terminal.js';
export type { TerminalOptions } from './terminal.js';
export { ptyHandler, runInPty } from './pty-process.js';
export type { PtyExit, PtyProcessOptions } from './pty-process.js';
export { sftpHandler } from './sftp/handler.js';
export { scpHandler, scpMiddleware } from './scp.js';
export type { ScpOptions } from './scp.js';
export { SftpStatus } from './sftp/constants.js';
export type { SftpStatusCode } from './sftp/constants.js';
export { SftpStatusError } from './sftp/errors.js';
export type { SftpDir, SftpFileHandle, SftpFileSystem, SftpStatFs, SftpStats } from './sftp/fs.js';
export type { FileServerOptions, SftpOperation, SftpOperationCallback, SftpOptions } from './sftp/options.js';
