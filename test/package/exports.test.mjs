// Checks the built package as users get it: the ESM and CommonJS entry points resolve through
// package.json "exports", carry the same API, and serve a real connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import ssh2 from 'ssh2';

const require = createRequire(import.meta.url);
const names = ['Server', 'Session', 'listenAndServe', 'serve', 'defaultSessionHandler', 'keysEqual',
  'parsePublicKey', 'parseAuthorizedKey', 'parseAuthorizedKeys', 'GlidesshError', 'ServerClosedError',
  'ERROR_CODES', 'splitCommand', 'parseTerminalModes', 'compose', 'DEFAULTS'];

test('ESM and CommonJS builds export the same API, with type declarations', async () => {
  const esm = await import('glidessh');
  const cjs = require('glidessh');
  for (const n of names) {
    assert.ok(n in esm, `ESM export ${n}`);
    assert.ok(n in cjs, `CJS export ${n}`);
    assert.equal(typeof esm[n], typeof cjs[n], n);
  }
  assert.ok(existsSync(new URL('../../dist/esm/index.d.ts', import.meta.url)));
  assert.ok(existsSync(new URL('../../dist/cjs/index.d.ts', import.meta.url)));
});

test('the CommonJS build serves an exec over loopback', async () => {
  const { listenAndServe } = require('glidessh');
  const server = await listenAndServe('127.0.0.1:0', async (s) => {
    s.write(`cjs ${s.user} ${s.command.join(',')}\n`);
    await s.exit(4);
  });
  try {
    const client = new ssh2.Client();
    const out = await new Promise((resolve, reject) => {
      client.on('error', reject).on('ready', () => {
        client.exec("a 'b c'", (err, ch) => {
          if (err) return reject(err);
          let data = '';
          let code;
          ch.on('data', (d) => (data += d)).on('exit', (c) => (code = c)).on('close', () => resolve({ data, code }));
        });
      }).connect({ host: '127.0.0.1', port: server.address().port, username: 'pkg' });
    });
    client.end();
    assert.deepEqual(out, { data: 'cjs pkg a,b c\n', code: 4 });
  } finally {
    await server.close();
  }
});

test('loading the package leaves the SFTP/SCP engine out until a file session starts; the CommonJS build loads it then', async () => {
  const { spawnSync } = await import('node:child_process');
  const script = `
    const g = require('glidessh');
    const loaded = () => Object.keys(require.cache).filter((k) => /dist[\\\\/]cjs[\\\\/]sftp[\\\\/](serve|engine|jail|ops)\\.js$/.test(k)).length;
    const before = loaded();
    g.sftpHandler({ root: '.' });
    g.scpHandler({ root: '.' });
    const afterFactories = loaded();
    require('./dist/cjs/sftp/handler.js').loadServe().then(() => {
      console.log(JSON.stringify({ before, afterFactories, afterFirstSession: loaded() }));
    });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: new URL('../..', import.meta.url), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const counts = JSON.parse(r.stdout);
  assert.deepEqual(counts, { before: 0, afterFactories: 0, afterFirstSession: 4 });
});
