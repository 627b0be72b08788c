import { createServer as createHttp2Server, type IncomingHttpHeaders } from 'node:http2';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '@lighthouse-bridge/test/tmp';
import { withAcceptableAuthority } from './authority.js';

/**
 * The rewriter in front of Node's real HTTP/2 server, fed raw frames the way an old grpc-go kubelet
 * may send them, including a padded HEADERS frame continued by CONTINUATION, which the gRPC client
 * in node.test.ts never produces.
 */
test('a path-valued :authority split over HEADERS+CONTINUATION reaches the server as a host', { timeout: 20_000 }, async () => {
  const dir = await tempDir('lhb-authority-');
  const h2 = createHttp2Server();
  const received = new Promise<IncomingHttpHeaders>((resolve) => {
    h2.on('stream', (stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end();
      resolve(headers);
    });
  });
  const socketPath = join(dir.dir, 'h2.sock');
  const listener = createServer((socket) => h2.emit('connection', withAcceptableAuthority(socket)));
  await new Promise<void>((resolve) => listener.listen(socketPath, resolve));
  const client = connect(socketPath);
  // The server may reset this bare-bones client once it has answered; only the headers matter.
  client.on('error', () => undefined);
  try {
    const authority = Buffer.from('/var/lib/kubelet/plugins/bridge.lighthouse.dev/csi.sock');
    const block = Buffer.concat([
      Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static table)
      Buffer.from([0x44, 0x02]), Buffer.from('/x'), // :path "/x", incremental indexing
      Buffer.from([0x01, authority.length]), authority, // :authority, without indexing
    ]);
    const frame = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
      const header = Buffer.alloc(9);
      header.writeUIntBE(payload.length, 0, 3);
      header[3] = type;
      header[4] = flags;
      header.writeUInt32BE(stream, 5);
      return Buffer.concat([header, payload]);
    };
    const split = 5;
    client.write(
      Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
        frame(0x4, 0, 0, Buffer.alloc(0)),
        // HEADERS: END_STREAM | PADDED, 3 bytes of padding, no END_HEADERS
        frame(0x1, 0x1 | 0x8, 1, Buffer.concat([Buffer.from([3]), block.subarray(0, split), Buffer.alloc(3)])),
        frame(0x9, 0x4, 1, block.subarray(split)),
      ]),
    );
    const headers = await received;
    assert.equal(headers[':path'], '/x');
    assert.equal(headers[':method'], 'POST');
    assert.equal(headers[':authority'], 'l');
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    await new Promise<void>((resolve) => h2.close(() => resolve()));
    await dir.remove();
  }
});
