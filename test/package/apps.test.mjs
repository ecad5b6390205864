// The app-building API as users get it from the built package: the middleware, terminal and
// pty exports in both builds, and the ESM-only "glidessh/ink" entry point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';

const require = createRequire(import.meta.url);
const names = ['logging', 'activeTerm', 'accessControl', 'recover', 'elapsed', 'comment', 'rateLimiter', 'RateLimiter',
  'createTerminal', 'Terminal', 'TerminalInput', 'TerminalOutput', 'colorLevel', 'sessionEnv', 'runInPty', 'ptyHandler',
  'MissingDependencyError', 'NoPtyError'];

test('ESM and CommonJS builds export the middleware, terminal and pty helpers', async () => {
  const esm = await import('glidessh');
  const cjs = require('glidessh');
  for (const n of names) {
    assert.equal(typeof esm[n], 'function', `ESM export ${n}`);
    assert.equal(typeof cjs[n], 'function', `CJS export ${n}`);
  }
  assert.equal(cjs.colorLevel('xterm-256color', {}), 2);
});

test('"glidessh/ink" is an ESM entry point with its types, and loads Ink only when asked', async () => {
  const ink = await import('glidessh/ink');
  assert.deepEqual(Object.keys(ink).sort(), ['inkHandler', 'loadInk', 'runInk']);
  assert.ok(existsSync(new URL('../../dist/esm/ink.d.ts', import.meta.url)));
  const { render } = await ink.loadInk();
  assert.equal(typeof render, 'function');
});
