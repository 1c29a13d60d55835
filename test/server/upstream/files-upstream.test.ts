// FilesUpstream and the health registry (audit L2): an upload whose browser stalls longer than the
// files service's idleTimeoutMs is closed by the service, which says so (SB_ERR_TIMEOUT); the user
// gets that code, and /api/health keeps files up: the service answered. A connection the service
// really loses still reports files down. Real gateway, real files service, HTTP on 127.0.0.1:0.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FilesService } from '../../../backends/files/files-service.js';
import { closeAll, login, multipart, testGateway } from '../app-fixture.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';

const services: FilesService[] = [];
afterEach(async () => {
  await closeAll();
  await Promise.all(services.splice(0).map((s) => s.close()));
  await removeTempDirs();
});

/**
 * Starts a request of `body.length` declared bytes and sends only the first `sent`: the sender stalls.
 * Resolves with the gateway's answer (it answers while the request body is unfinished).
 */
function stalledRequest(port: number, method: string, path: string, headers: Record<string, string>, body: Buffer, sent: number) {
  const req = http.request({ host: '127.0.0.1', port, method, path, headers: { ...headers, 'content-length': String(body.length) } });
  req.on('error', () => undefined);
  req.write(body.subarray(0, sent));
  return new Promise<{ status: number; code: string }>((resolve) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text) as { error: { code: string } }).error.code });
      });
    });
  });
}

async function setup(idleTimeoutMs: number) {
  const files = new FilesService({ root: await tempDir(), port: 0, idleTimeoutMs });
  services.push(files);
  const { port: filesPort } = await files.start();
  const { app } = await testGateway({ extra: { files: `tcp://127.0.0.1:${filesPort}` } });
  const cookie = await login(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const stalledPut = () =>
    stalledRequest(port, 'PUT', '/api/files/stalled.bin', { cookie: `sb_session=${cookie}`, origin, 'content-type': 'application/octet-stream' }, Buffer.alloc(2000, 1), 1000);
  const stalledPost = () => {
    const { payload, headers } = multipart([{ filename: 'stalled.bin', data: Buffer.alloc(200_000, 2) }]);
    return stalledRequest(port, 'POST', '/api/files', { ...headers, cookie: `sb_session=${cookie}`, origin }, payload, 50_000);
  };
  return { app, files, stalledPut, stalledPost };
}

describe('an upload stalled past the files service idle timeout', () => {
  it('PUT: answers 504 SB_ERR_TIMEOUT and files stays up in /api/health', async () => {
    const { app, stalledPut } = await setup(300);
    expect(await stalledPut()).toEqual({ status: 504, code: 'SB_ERR_TIMEOUT' });
    const health = await app.inject({ url: '/api/health' });
    expect(health.json().services.files.status).toBe('up');
  });

  it('multipart POST: answers 504 SB_ERR_TIMEOUT and files stays up', async () => {
    const { app, stalledPost } = await setup(300);
    expect(await stalledPost()).toEqual({ status: 504, code: 'SB_ERR_TIMEOUT' });
    expect(app.healthRegistry.get('files').status).toBe('up');
  });

  it('a files service lost mid-upload still marks files down', async () => {
    const { app, files, stalledPut } = await setup(60_000);
    const answer = stalledPut();
    await new Promise((r) => setTimeout(r, 200));
    expect(app.healthRegistry.get('files').status).toBe('up');
    await files.close();
    expect(await answer).toEqual({ status: 503, code: 'SB_ERR_BACKEND_DOWN' });
    expect(app.healthRegistry.get('files')).toMatchObject({ status: 'down', reason: 'connection failed' });
  });
});
