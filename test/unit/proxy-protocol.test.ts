/**
 * PROXY protocol v1/v2: the parser, and a server with `proxyProtocol` that takes the client
 * address from the header, drops connections without one, and only trusts listed proxies.
 */
import '../helpers/harness.js';
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { parseProxyHeader, ProxyProtocolError, type GlidesshError } from '../../src/index.js';
import { collect, startServer, waitFor } from '../helpers/harness.js';

function v2(cmd: number, fam: number, body: Buffer): Buffer {
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const head = Buffer.from([0x20 | cmd, fam, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([sig, head, body]);
}

function inet(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from(dst).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

describe('parseProxyHeader', () => {
  it('parses v1 TCP4, TCP6 and UNKNOWN and reports the header length', () => {
    const text = 'PROXY TCP4 203.0.113.7 10.0.0.1 51234 22\r\n';
    assert.deepEqual(parseProxyHeader(Buffer.from(`${text}SSH-2.0-x\r\n`)), {
      header: { version: 1, command: 'PROXY', sourceAddress: '203.0.113.7', sourcePort: 51234, destinationAddress: '10.0.0.1', destinationPort: 22 },
      length: text.length,
    });
    const six = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n'));
    assert.equal(six?.header.sourceAddress, '2001:db8::1');
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), { header: { version: 1, command: 'LOCAL' }, length: 15 });
  });

  it('parses v2 PROXY over IPv4 and IPv6, and LOCAL', () => {
    const h4 = parseProxyHeader(v2(1, 0x11, inet([198, 51, 100, 9], [10, 0, 0, 1], 40000, 2222)));
    assert.deepEqual(h4?.header, { version: 2, command: 'PROXY', sourceAddress: '198.51.100.9', destinationAddress: '10.0.0.1', sourcePort: 40000, destinationPort: 2222 });
    assert.equal(h4?.length, 28);
    const body6 = Buffer.alloc(36);
    body6.writeUInt16BE(0x2001, 0);
    body6.writeUInt16BE(0x0db8, 2);
    body6[15] = 1;
    body6.writeUInt16BE(0x2001, 16);
    body6[31] = 2;
    body6.writeUInt16BE(7, 32);
    body6.writeUInt16BE(22, 34);
    assert.equal(parseProxyHeader(v2(1, 0x21, body6))?.header.sourceAddress, '2001:db8::1');
    assert.deepEqual(parseProxyHeader(v2(0, 0, Buffer.alloc(0)))?.header, { version: 2, command: 'LOCAL' });
  });

  it('asks for more bytes while a header is incomplete', () => {
    assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.')), undefined);
    assert.equal(parseProxyHeader(v2(1, 0x11, inet([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)).subarray(0, 20)), undefined);
    assert.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a])), undefined);
  });

  it('rejects a missing, malformed or oversized header with ERR_PROXY_PROTOCOL', () => {
    const bad = [
      'SSH-2.0-OpenSSH_9.2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 99999 22\r\n',
      'PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n',
      'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n',
      'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n',
      `PROXY TCP4 ${'1'.repeat(120)}`,
    ];
    for (const text of bad) {
      assert.throws(() => parseProxyHeader(Buffer.from(text)), (e: GlidesshError) => e instanceof ProxyProtocolError && e.code === 'ERR_PROXY_PROTOCOL', text);
    }
    const huge = Buffer.concat([v2(1, 0x11, Buffer.alloc(0)).subarray(0, 14), Buffer.from([0xff, 0xff])]);
    assert.throws(() => parseProxyHeader(huge), ProxyProtocolError);
    assert.throws(() => parseProxyHeader(v2(1, 0x11, Buffer.alloc(4))), ProxyProtocolError, 'IPv4 family without room for addresses');
  });
});

/** Connects a raw socket to the server (from `localAddress`), sends `prefix`, then runs an ssh2 exec over it. */
async function execVia(port: number, prefix: Buffer, localAddress = '127.0.0.1'): Promise<string> {
  const sock = net.connect({ host: '127.0.0.1', port, localAddress });
  await new Promise((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  sock.write(prefix);
  const client = new ssh2.Client();
  client.on('error', () => undefined); // a second error after the first rejected is expected noise
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve).once('error', reject);
      client.connect({ sock, username: 'proxied', readyTimeout: 5000 });
    });
    const ch = await new Promise<ssh2.ClientChannel>((resolve, reject) => client.exec('x', (e, c) => (e ? reject(e) : resolve(c))));
    return (await collect(ch)).stdout.toString();
  } finally {
    client.end();
  }
}

describe('proxyProtocol option', () => {
  const handler = async (s: import('../../src/index.js').Session) => {
    s.write(`${s.remoteAddress}:${s.remotePort} -> ${s.localAddress}:${s.localPort}`);
  };

  it('takes the client address from a v1 or v2 header, and the real one from LOCAL', async (t) => {
    const ts = await startServer({ handler, proxyProtocol: true });
    t.after(() => ts.close());
    assert.equal(await execVia(ts.port, Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 51234 22\r\n')), '203.0.113.7:51234 -> 192.0.2.1:22');
    assert.equal(await execVia(ts.port, v2(1, 0x11, inet([198, 51, 100, 9], [192, 0, 2, 2], 40000, 2222))), '198.51.100.9:40000 -> 192.0.2.2:2222');
    assert.match(await execVia(ts.port, v2(0, 0, Buffer.alloc(0))), /^127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+$/);
  });

  it('drops a connection without a header, or with a malformed one, and reports ERR_PROXY_PROTOCOL', async (t) => {
    const failures: Error[] = [];
    const ts = await startServer({ handler, proxyProtocol: { timeout: 300 }, connectionFailedCallback: (_s, e) => failures.push(e) });
    t.after(() => ts.close());
    await assert.rejects(execVia(ts.port, Buffer.alloc(0)));
    await assert.rejects(execVia(ts.port, Buffer.from('PROXY TCP4 bogus\r\n')));
    await waitFor(() => failures.length >= 2, 3000, 'two failures');
    for (const f of failures) assert.equal((f as GlidesshError).code, 'ERR_PROXY_PROTOCOL');
    // The server still serves a proper proxied client.
    assert.equal(await execVia(ts.port, Buffer.from('PROXY TCP4 203.0.113.8 192.0.2.1 1 22\r\n')), '203.0.113.8:1 -> 192.0.2.1:22');
  });

  it('only trusted proxies may send a header; limits and penalties see the proxied source', async (t) => {
    const failures: Error[] = [];
    const ts = await startServer({
      handler,
      proxyProtocol: { trusted: ['127.0.0.2/32'] },
      perSourceMaxStartups: 1,
      connectionFailedCallback: (_s, e) => failures.push(e),
    });
    t.after(() => ts.close());
    const header = Buffer.from('PROXY TCP4 203.0.113.9 192.0.2.1 7 22\r\n');
    assert.equal(await execVia(ts.port, header, '127.0.0.2'), '203.0.113.9:7 -> 192.0.2.1:22');
    await assert.rejects(execVia(ts.port, header, '127.0.0.3'));
    await waitFor(() => failures.length >= 1, 3000, 'a failure');
    assert.match(failures[0]!.message, /127\.0\.0\.3 is not a trusted proxy/);
  });
});
