/**
 * Keys and OpenSSH certificates made with the real `ssh-keygen`, in a temporary directory.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAuthorizedKey, type PublicKey } from '../../src/index.js';

export type KeyType = 'ed25519' | 'ecdsa' | 'ecdsa384' | 'rsa';

export interface LabKey {
  /** Private key file. */
  path: string;
  /** `authorized_keys` line of the public key. */
  line: string;
  key: PublicKey;
}

export interface LabCert {
  /** The certificate file (`…-cert.pub`), for `ssh -o CertificateFile=`. */
  path: string;
  line: string;
  key: PublicKey;
}

export interface CertSpec {
  id?: string;
  principals?: string[];
  /** `ssh-keygen -V`, e.g. `-5m:+1h`, `20200101:20200102`. */
  validity?: string;
  serial?: number;
  /** `ssh-keygen -O` options, e.g. `force-command=echo hi`, `clear`, `permit-pty`. */
  options?: string[];
  /** `ssh-keygen -t` for an RSA CA: `ssh-rsa`, `rsa-sha2-256`, `rsa-sha2-512`. */
  signatureAlgorithm?: string;
  /** A host certificate (`ssh-keygen -h`). */
  host?: boolean;
}

const ARGS: Record<KeyType, string[]> = {
  ed25519: ['-t', 'ed25519'],
  ecdsa: ['-t', 'ecdsa', '-b', '256'],
  ecdsa384: ['-t', 'ecdsa', '-b', '384'],
  rsa: ['-t', 'rsa', '-b', '2048'],
};

export class KeyLab {
  readonly dir = mkdtempSync(join(tmpdir(), 'glidessh-certs-'));
  private readonly keys = new Map<string, LabKey>();
  private count = 0;

  /** A key pair (made once per name). */
  key(name: string, type: KeyType = 'ed25519'): LabKey {
    let k = this.keys.get(name);
    if (k) return k;
    const path = join(this.dir, name);
    execFileSync('ssh-keygen', ['-q', ...ARGS[type], '-N', '', '-C', name, '-f', path], { stdio: 'ignore' });
    const line = readFileSync(`${path}.pub`, 'utf8').trim();
    k = { path, line, key: parseAuthorizedKey(line).key };
    this.keys.set(name, k);
    return k;
  }

  /** A user certificate for `user`'s key signed by `ca`. */
  cert(user: string, ca: string, spec: CertSpec = {}): LabCert {
    const base = join(this.dir, `${user}.c${++this.count}`);
    copyFileSync(`${this.key(user).path}.pub`, `${base}.pub`);
    const args = ['-q', '-s', this.key(ca).path, '-I', spec.id ?? `${user}-id`, '-n', (spec.principals ?? ['alice']).join(',')];
    if (spec.validity) args.push(`-V${spec.validity}`);
    if (spec.serial !== undefined) args.push('-z', String(spec.serial));
    if (spec.signatureAlgorithm) args.push('-t', spec.signatureAlgorithm);
    if (spec.host) args.push('-h');
    for (const o of spec.options ?? []) args.push('-O', o);
    execFileSync('ssh-keygen', [...args, `${base}.pub`], { stdio: 'ignore' });
    const path = `${base}-cert.pub`;
    const line = readFileSync(path, 'utf8').trim();
    return { path, line, key: parseAuthorizedKey(line).key };
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
