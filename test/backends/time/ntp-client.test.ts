import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { queryNtp, queryText, sampleNtp } from '../../../backends/time/ntp-client.js';
import { TimeService } from '../../../backends/time/time-service.js';
import { isSockbridgeError, type ErrorCode } from '../../../protocol/errors.js';
import {
  decodeNtpPacket,
  encodeNtpPacket,
  NtpMode,
  ntpTimestampFromUnixMs,
  referenceIdFromText,
  type NtpPacket,
} from '../../../protocol/ntp-packet.js';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function startTime(options = {}) {
  const service = new TimeService({ port: 0, ...options });
  closers.push(() => service.close());
  return (await service.start()).port;
}

/** A hostile or broken NTP server: `answer` turns each request into the datagrams sent back. */
async function fakeServer(answer: (request: NtpPacket) => Uint8Array[]): Promise<number> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    for (const reply of answer(decodeNtpPacket(msg))) socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => socket.close(() => resolve())));
  return socket.address().port;
}

function serverReply(request: NtpPacket, overrides: Partial<NtpPacket> = {}, clockMs = Date.now()): Uint8Array {
  const now = ntpTimestampFromUnixMs(clockMs);
  return encodeNtpPacket({
    leap: 0, version: 4, mode: NtpMode.SERVER, stratum: 2, poll: 0, precision: -20, rootDelay: 0, rootDispersion: 0,
    referenceId: 0x0a000001, referenceTimestamp: now, originTimestamp: request.transmitTimestamp,
    receiveTimestamp: now, transmitTimestamp: now, ...overrides,
  });
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode) {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(isSockbridgeError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

describe('queryNtp', () => {
  it('measures offset and delay against the time service (RFC 5905 §8)', async () => {
    const port = await startTime();
    const sample = await queryNtp('127.0.0.1', port);
    expect(sample.stratum).toBe(10);
    expect(sample.refId).toBe('127.127.1.1');
    expect(sample.version).toBe(4);
    expect(sample.delayMs).toBeGreaterThanOrEqual(0);
    // Same host clock on both ends: the offset is bounded by half the round trip (plus anchoring error).
    expect(Math.abs(sample.offsetMs)).toBeLessThanOrEqual(sample.delayMs / 2 + 1);
    expect(Math.abs(sample.serverTime - Date.now())).toBeLessThan(1000);
  });

  it('ignores a reply whose origin is not its nonce (spoofed) and takes the genuine one', async () => {
    const port = await fakeServer((request) => [
      serverReply(request, { originTimestamp: request.transmitTimestamp ^ 1n }, Date.now() + 3_600_000), // forged: +1 h
      serverReply(request),
    ]);
    const sample = await queryNtp('127.0.0.1', port);
    expect(Math.abs(sample.offsetMs)).toBeLessThan(60_000);
    expect(sample.stratum).toBe(2);
    expect(sample.refId).toBe('10.0.0.1');
  });

  it('times out with SB_ERR_TIMEOUT when only forged and non-server replies arrive', async () => {
    const port = await fakeServer((request) => [
      serverReply(request, { originTimestamp: 0n }),
      serverReply(request, { mode: NtpMode.CLIENT }),
      Uint8Array.of(1, 2, 3),
    ]);
    await expectCode(queryNtp('127.0.0.1', port, { timeoutMs: 300 }), 'SB_ERR_TIMEOUT');
  });

  it.each<[string, Partial<NtpPacket>]>([
    ["kiss-o'-death RATE", { stratum: 0, referenceId: referenceIdFromText('RATE') }],
    ['stratum 16 (unsynchronized)', { stratum: 16 }],
    ['leap indicator 3 (alarm)', { leap: 3 }],
    ['zero transmit timestamp', { transmitTimestamp: 0n }],
  ])('refuses a reply with %s: SB_ERR_NTP_REPLY', async (_name, overrides) => {
    const port = await fakeServer((request) => [serverReply(request, overrides)]);
    await expectCode(queryNtp('127.0.0.1', port), 'SB_ERR_NTP_REPLY');
  });

  it('a closed port fails fast with SB_ERR_CONNECT', async () => {
    const port = await fakeServer(() => []);
    await closers.pop()!(); // close it: nothing listens there now
    await expectCode(queryNtp('127.0.0.1', port, { timeoutMs: 5000 }), 'SB_ERR_CONNECT');
  });

  it('an unknown host fails with SB_ERR_CONNECT, not an uncaught exception', async () => {
    await expectCode(queryNtp('no-such-host.invalid', 123, { timeoutMs: 5000 }), 'SB_ERR_CONNECT');
  });
});

describe('sampleNtp', () => {
  it('returns every sample and the one with the lowest delay', async () => {
    const port = await startTime();
    const { samples, best, failures } = await sampleNtp('127.0.0.1', port, { samples: 3, intervalMs: 10 });
    expect(samples).toHaveLength(3);
    expect(failures).toHaveLength(0);
    expect(best.delayMs).toBe(Math.min(...samples.map((s) => s.delayMs)));
  });

  it('throws the failure when every exchange fails', async () => {
    const port = await fakeServer(() => []);
    await expectCode(sampleNtp('127.0.0.1', port, { samples: 2, intervalMs: 1, timeoutMs: 100 }), 'SB_ERR_TIMEOUT');
  });
});

describe('queryText', () => {
  it("returns the service's YYYY-MM-DD HH:MM:SS line", async () => {
    const port = await startTime();
    expect(await queryText('127.0.0.1', port)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  it('times out when the text request is switched off', async () => {
    const port = await startTime({ text: false });
    await expectCode(queryText('127.0.0.1', port, { timeoutMs: 300 }), 'SB_ERR_TIMEOUT');
  });
});
