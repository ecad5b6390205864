/**
 * SSH agent forwarding (`ssh -A`), as gliderlabs' agent.go: {@link agentRequested},
 * {@link newAgentListener} and {@link forwardAgentConnections}. ssh2 has no API to open an
 * `auth-agent@openssh.com` channel to the client; glidessh opens it itself.
 *
 * @module
 */
import { rmSync } from 'node:fs';
import { chmod, mkdtemp } from 'node:fs/promises';
import { Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ForwardingError } from './errors.js';
import { isPermitted } from './restrictions.js';
import type { Session } from './session.js';
import { forwardToClient, listenUnix } from './internal/forwarding.js';
import { callHook, hookTimeout, runtimeOf, type Runtime } from './internal/runtime.js';

/**
 * Whether the client asked for agent forwarding on this session (`ssh -A`, request
 * `auth-agent-req@openssh.com`) and it was accepted. `agentForwardingCallback` decides; unset,
 * every request is accepted (as gliderlabs does), except for logins whose permissions forbid it
 * (`no-agent-forwarding`, `restrict`, a certificate without `permit-agent-forwarding`).
 *
 * @example
 * ```ts
 * server.handle(async (s) => {
 *   if (!agentRequested(s)) {
 *     s.stderr.write('run ssh -A to forward your agent\n');
 *     return;
 *   }
 *   // ...newAgentListener() + forwardAgentConnections()
 * });
 * ```
 * @see OpenSSH PROTOCOL.agent
 */
export function agentRequested(session: Session): boolean {
  return session.agentRequested;
}

/** A Unix socket on the server whose connections reach the client's agent. */
export interface AgentListener {
  /** The socket's path: set `SSH_AUTH_SOCK` to it for programs that should use the agent. */
  readonly path: string;
  /** The listening socket server. */
  readonly server: NetServer;
  /**
   * Stops listening and removes the socket and its private directory. Agent connections
   * already open go on until they end. Idempotent.
   */
  close(): Promise<void>;
  /** Same as `close()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Creates a Unix socket for agent forwarding in a new private temporary directory (mode 0700,
 * under `os.tmpdir()`; the socket itself is 0600). `close()` removes both. Rejects with a
 * `ForwardingError` (`ERR_FORWARDING`, the original error as `cause`) if they cannot be created.
 *
 * @example
 * ```ts
 * const agent = await newAgentListener();
 * try {
 *   void forwardAgentConnections(agent, s);
 *   execFileSync('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: agent.path } });
 * } finally {
 *   await agent.close();
 * }
 * ```
 * @see OpenSSH PROTOCOL.agent
 */
export async function newAgentListener(): Promise<AgentListener> {
  let dir: string | undefined;
  try {
    dir = await mkdtemp(join(tmpdir(), 'glidessh-agent-'));
    await chmod(dir, 0o700);
    const path = join(dir, 'agent.sock');
    const bound = await listenUnix(path);
    const d = dir;
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      bound.close();
      rmSync(d, { recursive: true, force: true });
    };
    bound.server.on('error', () => undefined);
    bound.server.once('close', () => void close());
    return { path, server: bound.server, close, [Symbol.asyncDispose]: close };
  } catch (err) {
    if (dir) rmSync(dir, { recursive: true, force: true });
    throw new ForwardingError(`cannot create the agent socket: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Hands every connection to `listener` to the client's agent: each one gets its own
 * `auth-agent@openssh.com` channel, piped both ways. Connections are closed at once when the
 * session did not get agent forwarding ({@link agentRequested}) or the client refuses the
 * channel. The listener is closed when the session ends. Resolves once the listener has
 * closed and its connections have ended (at once if it is not listening); never rejects.
 *
 * @param listener an {@link AgentListener}, or any listening `net.Server`.
 * @example
 * ```ts
 * server.handle(async (s) => {
 *   if (!agentRequested(s)) return;
 *   const agent = await newAgentListener();
 *   void forwardAgentConnections(agent, s);
 *   const child = spawn('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: agent.path } });
 *   child.stdout.pipe(s, { end: false });
 *   await once(child, 'close');
 *   await agent.close();
 * });
 * ```
 * @see OpenSSH PROTOCOL.agent
 */
export function forwardAgentConnections(listener: AgentListener | NetServer, session: Session): Promise<void> {
  const server = listener instanceof NetServer ? listener : listener.server;
  const rt = runtimeOf(session.context);
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const onConnection = (socket: Socket): void => {
      socket.on('error', () => undefined);
      if (!rt || !session.agentRequested || session.signal.aborted) {
        socket.destroy();
        return;
      }
      forwardToClient(rt, socket, { type: 'auth-agent@openssh.com' });
    };
    const onAbort = (): void => {
      if (listener instanceof NetServer) listener.close();
      else void listener.close();
    };
    server.on('connection', onConnection);
    session.signal.addEventListener('abort', onAbort, { once: true });
    server.once('close', () => {
      server.off('connection', onConnection);
      session.signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/**
 * Whether an `auth-agent-req@openssh.com` is accepted: the login's permissions allow agent
 * forwarding and `agentForwardingCallback` (unset: yes) says so.
 * @internal
 */
export async function agentForwardingAllowed(rt: Runtime): Promise<boolean> {
  if (!isPermitted(rt.ctx, 'agent-forwarding')) return false;
  const cb = rt.options.agentForwardingCallback;
  if (!cb) return true;
  return (await callHook(rt, 'agentForwardingCallback', cb, [rt.ctx], false, hookTimeout(rt))) === true;
}
