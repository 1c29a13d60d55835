// A client hanging up mid-upload is logged as a client event (info), never as a gateway error.
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { closeAll, login, multipart, startRawUpload, testGateway } from '../app-fixture.js';
import { removeTempDirs } from '../../helpers/tmp.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

describe('error handler', () => {
  it('logs an upload aborted by the client at info, with no error-level line (regression: seen in the soak)', async () => {
    const lines: { level: number; msg: string }[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const { app } = await testGateway({ files: true, logger: pino({ level: 'info' }, sink) });
    const cookie = await login(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const body = multipart([{ filename: 'big.bin', data: Buffer.alloc(400_000, 2) }]);
    const socket = await startRawUpload(port, cookie, body, 100_000);
    await new Promise((r) => setTimeout(r, 200));
    socket.destroy();
    // wait until the gateway has finished with the request (its completion line), bounded
    const settled = () => lines.some((l) => /aborted/.test(l.msg) || l.level >= 50) || lines.filter((l) => l.msg === 'request completed').length >= 2;
    for (let i = 0; i < 200 && !settled(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(lines.some((l) => /aborted/.test(l.msg))).toBe(true);
    expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    // and the gateway still serves
    const res = await app.inject({ method: 'GET', url: '/api/files', cookies: { sb_session: cookie } });
    expect(res.statusCode).toBe(200);
  });

  it.each([
    ['an over-long name', `/api/files/${'a'.repeat(1100)}`, 414],
    ['a broken percent-encoding', '/api/files/%E0%A4%A', 400],
  ])('answers %s, refused by the router itself, in the API error format', async (_what, url, status) => {
    const { app } = await testGateway();
    const cookie = await login(app);
    const res = await app.inject({ url, cookies: { sb_session: cookie } });
    expect(res.statusCode).toBe(status);
    expect(res.json()).toMatchObject({ error: { code: 'SB_ERR_BAD_REQUEST' } });
  });
});
