/**
 * The app examples (Ink game, chat, real shell) as people use them: the real OpenSSH client
 * with -tt in a real terminal (a private tmux server), keys typed with send-keys, the screen
 * read with capture-pane, windows resized with resize-window.
 */
import '../helpers/harness.js';
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../helpers/harness.js';
import { Tmux, hasTmux, sshCommand, startExample } from '../helpers/tmux.js';

function needTmux(t: TestContext): boolean {
  if (hasTmux()) return true;
  if (process.env.CI) assert.fail('tmux is not installed; CI must install it');
  t.skip('tmux is not installed (Debian: tmux)');
  return false;
}

describe('examples/game.tsx (Ink 2048) in tmux', () => {
  it('draws the board, moves on arrow keys, follows a resize and quits on q (also with CI=true)', async (t) => {
    if (!needTmux(t)) return;
    // CI=true on the server: Ink must still render live frames and follow resizes.
    const { port } = await startExample(t, 'game.tsx', { GAME_SEED: '7', CI: 'true' });
    const tmux = new Tmux(t);
    await tmux.start('ada', sshCommand(port, 'ada'), 80, 24);
    let screen = await tmux.waitFor('ada', /2048 score 0 moves 0/);
    assert.match(screen, /ada · 80x24 · 256 colors/);
    assert.match(screen, /╭─+╮/);
    assert.equal((screen.match(/ 2 | 4 /g) ?? []).length >= 1, true, `two tiles on the board:\n${screen}`);
    // One of Left/Right moves two tiles on an empty board, whatever the seed put where.
    await tmux.keys('ada', 'Left', 'Right');
    screen = await tmux.waitFor('ada', /moves [12] /);
    await tmux.resize('ada', 100, 30);
    screen = await tmux.waitFor('ada', /ada · 100x30 · 256 colors/);
    await tmux.resize('ada', 30, 10);
    await tmux.waitFor('ada', /Too small: 30x10 \(need 34x14\)/);
    await tmux.resize('ada', 80, 24);
    await tmux.waitFor('ada', /ada · 80x24/);
    await tmux.keys('ada', 'q');
    assert.equal(await tmux.exitStatus('ada'), 0);
  });

  it('two users at once each get their own game, size and clock', async (t) => {
    if (!needTmux(t)) return;
    const { port } = await startExample(t, 'game.tsx');
    const tmux = new Tmux(t);
    await tmux.start('ada', sshCommand(port, 'ada'), 80, 24);
    await tmux.start('bob', sshCommand(port, 'bob'), 120, 40);
    await tmux.waitFor('ada', /ada · 80x24/);
    await tmux.waitFor('bob', /bob · 120x40/);
    await tmux.keys('bob', 'Up', 'Down');
    await tmux.waitFor('bob', /moves [12] /);
    assert.match(await tmux.capture('ada'), /moves 0 /, 'bob moving does not move ada');
    await tmux.resize('ada', 90, 30);
    await tmux.waitFor('ada', /ada · 90x30/);
    assert.match(await tmux.capture('bob'), /bob · 120x40/, 'a resize of ada leaves bob alone');
    // The clock ticks per session.
    await tmux.waitFor('bob', / 0:0[1-9] /);
    await tmux.keys('ada', 'C-c');
    await tmux.keys('bob', 'q');
    assert.equal(await tmux.exitStatus('ada'), 0);
    assert.equal(await tmux.exitStatus('bob'), 0);
  });

  it('picks the color level from each client: TERM=xterm-256color, TERM=dumb, COLORTERM=truecolor via SetEnv', async (t) => {
    if (!needTmux(t)) return;
    const { port } = await startExample(t, 'game.tsx');
    const tmux = new Tmux(t);
    await tmux.start('c256', sshCommand(port, 'ada', [], { TERM: 'xterm-256color' }));
    await tmux.start('dumb', sshCommand(port, 'bob', ['-o', 'SetEnv=COLORTERM=truecolor'], { TERM: 'dumb' }));
    await tmux.start('true', sshCommand(port, 'cy', ['-o', 'SetEnv=COLORTERM=truecolor'], { TERM: 'xterm-256color' }));
    await tmux.waitFor('c256', /ada · 80x24 · 256 colors/);
    await tmux.waitFor('dumb', /bob · 80x24 · no colors/);
    await tmux.waitFor('true', /cy · 80x24 · truecolor/);
    // The 256-color tiles are painted with 256-color SGR codes (capture-pane -e keeps them).
    const colored = (await tmux.tmux('capture-pane', '-p', '-e', '-t', 'c256')).stdout.toString();
    assert.match(colored, /\x1b\[[\d;]*48;5;\d+/);
  });
});

describe('examples/chat.ts in tmux', () => {
  it('relays messages between two users with different window sizes, and follows a resize', async (t) => {
    if (!needTmux(t)) return;
    const { port } = await startExample(t, 'chat.ts', { CI: 'true' });
    const tmux = new Tmux(t);
    await tmux.start('ada', sshCommand(port, 'ada'), 80, 24);
    await tmux.waitFor('ada', /welcome, ada! 1 here/);
    await tmux.start('bob', sshCommand(port, 'bob'), 100, 30);
    await tmux.waitFor('bob', /welcome, bob! 2 here/);
    await tmux.waitFor('ada', /\* bob joined/);

    await tmux.keys('ada', 'hello from ada', 'Enter');
    const bob = await tmux.waitFor('bob', /ada: hello from ada/);
    // The time sits at the right edge of *bob's* 100-column window, and of ada's 80.
    const bobLine = bob.split('\n').find((l) => l.includes('ada: hello from ada'))!;
    assert.equal(bobLine.length, 100, JSON.stringify(bobLine));
    assert.match(bobLine, / \d\d:\d\d$/);
    const ada = await tmux.waitFor('ada', /ada: hello from ada/);
    assert.equal(ada.split('\n').find((l) => l.includes('ada: hello from ada'))!.length, 80);
    assert.doesNotMatch(ada, /> hello from ada/, 'the echoed input line is replaced by the message');

    // What bob is typing survives a message from ada.
    await tmux.keys('bob', 'half typed');
    await tmux.waitFor('bob', /> half typed/);
    await tmux.keys('ada', '/me waves', 'Enter');
    const typing = await tmux.waitFor('bob', /\* ada waves/);
    assert.match(typing, /> half typed/);

    await tmux.resize('ada', 120, 30);
    await tmux.waitFor('ada', /your window is now 120x30/);
    await tmux.keys('bob', 'Enter');
    const wide = await tmux.waitFor('ada', /bob: half typed/);
    assert.equal(wide.split('\n').find((l) => l.includes('bob: half typed'))!.length, 120);

    await tmux.keys('ada', '/who', 'Enter');
    await tmux.waitFor('ada', /\* here: (ada, bob|bob, ada)/);
    await tmux.keys('ada', '/quit', 'Enter');
    assert.equal(await tmux.exitStatus('ada'), 0);
    await tmux.waitFor('bob', /\* ada left/);
    await tmux.keys('bob', 'C-d');
    assert.equal(await tmux.exitStatus('bob'), 0);
  });
});

describe('examples/shell.ts (node-pty) in tmux', () => {
  it('runs a real login shell: commands, stty size after a resize, ^C, and exit status', async (t) => {
    if (!needTmux(t)) return;
    const dir = mkdtempSync(join(tmpdir(), 'glidessh-shell-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id')]);
    const { port } = await startExample(t, 'shell.ts', { AUTHORIZED_KEYS: join(dir, 'id.pub'), LOGIN_SHELL: '/bin/sh' });
    const tmux = new Tmux(t);
    await tmux.start('sh', sshCommand(port, 'ada', ['-i', join(dir, 'id'), '-o', 'IdentitiesOnly=yes']), 80, 24);
    await tmux.waitFor('sh', /^[#$]\s*$/m);
    await tmux.keys('sh', 'echo "answer=$((6*7))"; stty size; echo "term=$TERM"', 'Enter');
    const screen = await tmux.waitFor('sh', /^term=tmux-256color$/m);
    assert.match(screen, /^answer=42$/m);
    assert.match(screen, /^24 80$/m);
    await tmux.resize('sh', 120, 40);
    await tmux.keys('sh', 'stty size; sleep 30', 'Enter');
    await tmux.waitFor('sh', /^40 120$/m);
    await tmux.keys('sh', 'C-c');
    await tmux.keys('sh', 'echo "after=$((1+1))"', 'Enter');
    await tmux.waitFor('sh', /after=2$/m); // the prompt may follow the echoed line
    await tmux.keys('sh', 'exit 7', 'Enter');
    assert.equal(await tmux.exitStatus('sh'), 7);
  });

  it('refuses a wrong key, and a session without a pty', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'glidessh-shell-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    for (const k of ['good', 'bad']) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, k)]);
    const { port } = await startExample(t, 'shell.ts', { AUTHORIZED_KEYS: join(dir, 'good.pub') });
    const { ssh } = await import('../helpers/harness.js');
    const bad = await ssh(port, ['-i', join(dir, 'bad'), '-o', 'IdentitiesOnly=yes', 'true']);
    assert.equal(bad.code, 255);
    const noPty = await ssh(port, ['-T', '-i', join(dir, 'good'), '-o', 'IdentitiesOnly=yes', 'echo hi']);
    assert.equal(noPty.code, 1);
    assert.equal(noPty.stderr.toString(), 'Requires an active PTY\n');
  });
});
