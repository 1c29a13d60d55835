// websocketErrorHandler: a client's protocol error is answered with its close code and a finished
// closing handshake (not a reset that can swallow the close frame), and logged at info, never at
// error level (a log an attacker could flood).
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { removeTempDirs } from '../../helpers/tmp.js';
import { CLOSE_GRACE_MS } from '../../../server/plugins/ws-close.js';
import { closeAll, startGateway, waitFor } from '../routes/ws-kit.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

/** A masked client frame (RFC 6455 §5.2, §5.3) with a 64-bit length, whatever its size. */
function clientFrame(first: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(14);
  head[0] = first;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(payload.length), 2);
  const mask = randomBytes(4);
  mask.copy(head, 10);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, masked]);
}

const parseLog = (lines: string[]) => lines.map((l) => JSON.parse(l) as { level: number; msg: string; wsError?: string } & Record<string, unknown>);

describe('websocketErrorHandler', () => {
  it('a frame with RSV bits: close 1002 reaches the client even with unread bytes behind it; logged at info, no error line', async () => {
    const lines: string[] = [];
    const gw = await startGateway({}, {}, lines);
    const cookie = await gw.login('alice', 'alice-password');
    for (let attempt = 0; attempt < 3; attempt++) {
      const client = await gw.open('/ws/time', cookie);
      // Written under the client's own framing: FIN + RSV1 + text, then more frames the server will
      // never read (an immediate terminate() turns those unread bytes into a TCP reset).
      const raw = (client.ws as unknown as { _socket: net.Socket })._socket;
      const junk = clientFrame(0x81, Buffer.alloc(60_000, 0x20));
      // The client reads late, as a busy browser would: the server's close frame must still be there.
      raw.pause();
      raw.write(Buffer.concat([clientFrame(0x80 | 0x40 | 0x01, Buffer.from('{"cmd":"ping","t0":1}')), junk, junk, junk, junk]));
      // and it keeps sending for a while, as a client does that has not read the close yet
      for (let i = 0; i < 20 && raw.writable; i++) {
        raw.write(junk);
        await new Promise((r) => setTimeout(r, 5));
      }
      raw.resume();
      expect((await client.closed).code).toBe(1002);
    }
    const log = parseLog(lines);
    expect(log.filter((l) => l.level >= 50)).toEqual([]);
    const line = log.find((l) => l.msg === 'websocket closed after a client error');
    expect(line).toMatchObject({ level: 30, wsError: 'WS_ERR_UNEXPECTED_RSV_1', user: 'alice', remote: '127.0.0.1', origin: gw.origin });
    // never the session cookie
    expect(lines.join('\n')).not.toContain(cookie);
  });

  it('a client that never answers the close frame is dropped after the grace period, not ws\'s 30 s', async () => {
    const gw = await startGateway({});
    const client = await gw.open('/ws/time', await gw.login('alice', 'alice-password'));
    const raw = (client.ws as unknown as { _socket: net.Socket })._socket;
    raw.pause(); // never reads the close frame, so never answers it
    raw.write(clientFrame(0x80 | 0x40 | 0x01, Buffer.from('{}')));
    await waitFor(() => gw.app.websocketServer.clients.size === 0, CLOSE_GRACE_MS + 5000, 'the server to drop the socket');
  });
});
