/**
 * Test helpers for whole applications: start an example as a child process, and drive the real
 * OpenSSH client inside a private tmux server (send-keys, capture-pane, resize-window).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SSH_ARGS, delay, run, type ProcResult } from './harness.js';

type Cleanup = { after(fn: () => unknown): void };

export const hasTmux = (): boolean => spawnSync('sh', ['-c', 'command -v tmux']).status === 0;

/** Quotes one word for /bin/sh. */
export const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export { startExample } from './harness.js';

/** The `ssh -tt` command line for a tmux pane, as one shell string. */
export function sshCommand(port: number, user: string, extra: string[] = [], env: Record<string, string> = {}): string {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${shq(v)}`);
  const argv = ['ssh', '-tt', ...SSH_ARGS, '-p', String(port), ...extra, `${user}@127.0.0.1`].map(shq);
  return (vars.length ? ['env', ...vars, ...argv] : argv).join(' ');
}

/** A private tmux server (its own socket in a temporary directory), killed when the test ends. */
export class Tmux {
  private readonly dir: string;
  private readonly socket: string;
  private readonly conf: string;

  constructor(t: Cleanup) {
    this.dir = mkdtempSync(join(tmpdir(), 'glidessh-tmux-'));
    this.socket = join(this.dir, 'sock');
    this.conf = join(this.dir, 'tmux.conf');
    writeFileSync(this.conf, 'set -g status off\nset -g remain-on-exit on\nset -g default-terminal tmux-256color\n');
    t.after(async () => {
      await this.tmux('kill-server');
      rmSync(this.dir, { recursive: true, force: true });
    });
  }

  /** Runs a tmux command against this server. */
  tmux(...args: string[]): Promise<ProcResult> {
    return run('tmux', ['-S', this.socket, '-f', this.conf, ...args]);
  }

  /**
   * Opens a detached session `name` of `width`x`height` running `command`; its exit status is
   * written to a file for {@link Tmux.exitStatus} (tmux's own pane_dead_status is not always
   * filled in).
   */
  async start(name: string, command: string, width = 80, height = 24): Promise<void> {
    const status = join(this.dir, `${name}.status`);
    const wrapped = `${command}; echo $? > ${shq(`${status}.tmp`)} && mv ${shq(`${status}.tmp`)} ${shq(status)}`;
    const r = await this.tmux('new-session', '-d', '-s', name, '-x', String(width), '-y', String(height), wrapped);
    assert.equal(r.code, 0, r.stderr.toString());
  }

  /** The visible text of the pane. */
  async capture(name: string): Promise<string> {
    return (await this.tmux('capture-pane', '-p', '-t', name)).stdout.toString();
  }

  /** Types keys (tmux key names such as `Left`, `Enter`, `C-c`, or literal text). */
  async keys(name: string, ...keys: string[]): Promise<void> {
    const r = await this.tmux('send-keys', '-t', name, ...keys);
    assert.equal(r.code, 0, r.stderr.toString());
  }

  /** Resizes the session's window. */
  async resize(name: string, width: number, height: number): Promise<void> {
    const r = await this.tmux('resize-window', '-t', name, '-x', String(width), '-y', String(height));
    assert.equal(r.code, 0, r.stderr.toString());
  }

  /** Polls capture-pane until `re` matches (at most `ms`), and returns the screen. */
  async waitFor(name: string, re: RegExp, ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    let text = '';
    while (!re.test((text = await this.capture(name)))) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${re} in pane ${name}; screen:\n${text}`);
      await delay(50);
    }
    return text;
  }

  /** Waits until the pane's command exited and returns its exit status. */
  async exitStatus(name: string, ms = 10_000): Promise<number> {
    const file = join(this.dir, `${name}.status`);
    const end = Date.now() + ms;
    while (!existsSync(file)) {
      if (Date.now() > end) assert.fail(`pane ${name} did not exit; screen:\n${await this.capture(name)}`);
      await delay(50);
    }
    return Number(readFileSync(file, 'utf8').trim());
  }
}
