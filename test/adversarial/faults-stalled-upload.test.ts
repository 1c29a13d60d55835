// The files service is lost while a browser's upload is stalled (its sender paused): the gateway
// answers at once (503 SB_ERR_BACKEND_DOWN) instead of holding the request until the browser sends
// more or requestTimeout ends it. Regression for FilesClient.put waiting on its source.
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FilesService } from '../../backends/files/files-service.js';
import { closeAll, login, multipart, startRawUpload, testGateway } from '../server/app-fixture.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

function responseOf(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n') && text.includes('}')) resolve(text);
    });
    socket.on('close', () => resolve(text));
  });
}

async function gatewayWithOwnFilesService() {
  const root = await tempDir();
  const files = new FilesService({ root, port: 0 });
  const { port: filesPort } = await files.start();
  const { app } = await testGateway({ extra: { files: `tcp://127.0.0.1:${filesPort}` } });
  const cookie = await login(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return { app, files, cookie, port };
}

describe('a stalled upload when the files service is lost', () => {
  it('PUT: answers 503 without waiting for the stalled sender', async () => {
    const { files, cookie, port } = await gatewayWithOwnFilesService();
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => undefined);
    await new Promise((r) => socket.once('connect', r));
    const response = responseOf(socket);
    socket.write(
      `PUT /api/files/stalled.bin HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\nCookie: sb_session=${cookie}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n`,
    );
    socket.write(Buffer.alloc(100_000, 1)); // then the sender stalls
    await new Promise((r) => setTimeout(r, 300));
    await files.close();
    const text = await response;
    socket.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 503/);
    expect(text).toContain('SB_ERR_BACKEND_DOWN');
  });

  it('multipart POST: answers 503 without waiting for the stalled sender', async () => {
    const { files, cookie, port } = await gatewayWithOwnFilesService();
    const body = multipart([{ filename: 'stalled.bin', data: Buffer.alloc(2_000_000, 2) }]);
    const socket = await startRawUpload(port, cookie, body, 200_000); // then the sender stalls
    const response = responseOf(socket);
    await new Promise((r) => setTimeout(r, 300));
    await files.close();
    const text = await response;
    socket.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 503/);
    expect(text).toContain('SB_ERR_BACKEND_DOWN');
  });
});
