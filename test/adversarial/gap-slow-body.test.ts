// Issue 5 gap audit, slow clients: http-slow-and-large covers headers dripped byte by byte
// (headersTimeout); this covers a request whose headers are complete but whose body trickles in
// forever. Node's requestTimeout (set from limits.requestTimeoutMs; Fastify sets none) must close it
// while the gateway keeps answering everyone else.
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../helpers/tmp.js';
import { closeAll, testGateway } from '../server/app-fixture.js';
import { slowClient } from './slow-client.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

describe('slow request bodies', () => {
  it('closes a request whose body trickles past requestTimeout, while /api/health answers', async () => {
    const { app } = await testGateway({ extra: { limits: { requestTimeoutMs: 1500, headersTimeoutMs: 1000 } } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const body = JSON.stringify({ username: 'alice', password: 'alice-password' });
    const client = await slowClient(
      port,
      `POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length + 1000}\r\n\r\n`,
      body,
      100,
    );
    try {
      const health = await fetch(`http://127.0.0.1:${port}/api/health`);
      expect(health.status).toBe(200);
      await client.closed; // the test's own timeout fails this if the server never closes it
      // Node answers 408 when it can; either way the request never reached the login route
      expect(client.answered()).toMatch(/^$|^HTTP\/1\.1 408/);
    } finally {
      client.stop();
    }
    const after = await fetch(`http://127.0.0.1:${port}/api/health`);
    expect(after.status).toBe(200);
  }, 15_000);
});
