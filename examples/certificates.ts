/**
 * OpenSSH user certificates from a CA you trust (plus an optional authorized_keys file), with
 * each failed login logged in a fail2ban-friendly line.
 *
 *   ssh-keygen -t ed25519 -N '' -f user_ca                                    # once: a CA
 *   ssh-keygen -s user_ca -I alice@laptop -n alice -V +1h ~/.ssh/id_ed25519.pub  # issue a certificate
 *   USER_CA=user_ca.pub npx tsx examples/certificates.ts
 *   ssh -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null alice@127.0.0.1
 *
 * (ssh picks up ~/.ssh/id_ed25519-cert.pub by itself.) Optional: AUTHORIZED_KEYS=path for
 * plain keys (edits apply without a restart), REVOKED=serial,serial… to revoke certificates.
 */
import {
  authorizedKeysHandler,
  certificateHandler,
  forcedCommand,
  isPermitted,
  listenAndServe,
  type PublicKeyHandler,
} from '../src/index.js';

const addr = process.env.ADDR ?? '127.0.0.1:2222';
const revoked = new Set((process.env.REVOKED ?? '').split(',').filter(Boolean).map((s) => BigInt(s)));

const certificates = certificateHandler({
  trustedUserCAKeysFile: process.env.USER_CA ?? 'user_ca.pub',
  isRevoked: (cert) => revoked.has(cert.serial),
});
const plainKeys = process.env.AUTHORIZED_KEYS ? authorizedKeysHandler({ path: process.env.AUTHORIZED_KEYS }) : undefined;
const publicKeyHandler: PublicKeyHandler = async (ctx, key) =>
  (plainKeys !== undefined && (await plainKeys(ctx, key))) || (await certificates(ctx, key));

const server = await listenAndServe(
  addr,
  (s) => {
    const cert = s.publicKey?.certificate;
    if (cert) {
      s.write(`Hello ${s.user}: certificate "${cert.keyId}", serial ${cert.serial}, CA ${cert.signatureKey.fingerprint()}\n`);
    } else {
      s.write(`Hello ${s.user}: key ${s.publicKey?.fingerprint()}\n`);
    }
    const forced = forcedCommand(s) !== undefined ? ' (forced)' : '';
    s.write(`command: ${s.rawCommand || '(shell)'}${forced}; pty ${isPermitted(s, 'pty') ? 'permitted' : 'not permitted'}\n`);
  },
  {
    publicKeyHandler,
    authFailedCallback: (ctx, f) => {
      console.log(`Failed ${f.method} for ${f.user} from ${ctx.remoteAddress} port ${ctx.remotePort}: ${f.reason}`);
    },
  },
);
server.on('error', (err) => console.error('error:', err.message));
console.log(`listening on ${server.address()!.address}:${server.address()!.port}`);
