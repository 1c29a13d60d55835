// Attacks on the UDP time service (issue 5): amplification (NTP's monlist was 556×), control and
// private modes, floods from one source, forged sources growing memory, malformed datagrams.
// Every case also checks that a well-behaved client is still answered afterwards.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { TimeService, type TimeOptions } from '../../backends/time/time-service.js';
import { decodeNtpPacket, NtpMode } from '../../protocol/ntp-packet.js';
import { isTimeTextRequest } from '../../protocol/time-text.js';
import { fcOptions } from '../helpers/fc.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { clientRequest, closeAllPeers, udpPeer, type UdpPeer } from '../backends/time/time-kit.js';

const services: TimeService[] = [];
afterEach(async () => {
  await closeAllPeers();
  await Promise.all(services.splice(0).map((s) => s.close()));
  await removeTempDirs();
});

async function startTime(options: Partial<TimeOptions> = {}) {
  const service = new TimeService({ port: 0, ...options });
  services.push(service);
  return { service, port: (await service.start()).port };
}

let nonce = 0x5eed_0000_0000_0001n;

/**
 * Sends `datagram`, then a valid probe request with a fresh nonce, and returns every reply that
 * arrived before the probe's: the replies to `datagram` (the service answers in order). So no
 * test waits for a silence to prove "no reply".
 */
async function repliesTo(peer: UdpPeer, datagram: Uint8Array): Promise<Buffer[]> {
  const probe = nonce++;
  await peer.send(datagram);
  await peer.send(clientRequest(4, probe));
  const before: Buffer[] = [];
  for (;;) {
    const reply = await peer.next(2000);
    if (!reply) throw new Error('the service stopped answering (no reply to the probe)');
    if (reply.length === 48 && decodeNtpPacket(reply).originTimestamp === probe) return before;
    before.push(reply);
  }
}

/** A 48+ byte packet with the given first-byte fields, random body. */
const ntpShaped = fc
  .record({
    leap: fc.integer({ min: 0, max: 3 }),
    version: fc.integer({ min: 0, max: 7 }),
    mode: fc.integer({ min: 0, max: 7 }),
    body: fc.uint8Array({ minLength: 47, maxLength: 1499 }),
  })
  .map(({ leap, version, mode, body }) => Uint8Array.of((leap << 6) | (version << 3) | mode, ...body));

// ntpdc's monlist request (mode 7, implementation 3 XNTPD, request 42 MON_GETLIST_1), the packet
// behind CVE-2013-5211, as 8 bytes and padded to 48 and 192 bytes; ntpq's readvar (mode 6).
const MONLIST = Uint8Array.of(0x17, 0x00, 0x03, 0x2a, 0, 0, 0, 0);
const pad = (bytes: Uint8Array, n: number) => Uint8Array.from({ length: n }, (_v, i) => bytes[i] ?? 0);
const CONTROL_READVAR = Uint8Array.of(0x16, 0x02, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0);

describe('time service under attack (UDP)', () => {
  it('never answers with more bytes than the request held (the 4-byte `time` text is the one exception)', async () => {
    const { port } = await startTime({ ntpBurst: 100_000, textBurst: 100_000 });
    const peer = await udpPeer(port);
    const datagrams = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 1500 }),
      ntpShaped,
      fc.constantFrom(Buffer.from('time'), Buffer.from('time\n'), MONLIST, pad(MONLIST, 48), pad(MONLIST, 192), CONTROL_READVAR, pad(CONTROL_READVAR, 48)),
    );
    await fc.assert(
      fc.asyncProperty(datagrams, async (datagram) => {
        const replies = await repliesTo(peer, datagram);
        const { mode, version } = { mode: (datagram[0] ?? 0) & 7, version: ((datagram[0] ?? 0) >> 3) & 7 };
        if (isTimeTextRequest(datagram)) {
          expect(replies.map((r) => r.length)).toEqual([19]);
          return;
        }
        for (const reply of replies) expect(reply.length).toBeLessThanOrEqual(datagram.length);
        const isClient = datagram.length >= 48 && version >= 1 && version <= 4 &&
          (mode === NtpMode.CLIENT || (version === 1 && mode === 0 && datagram.length === 48));
        if (!isClient) {
          expect(replies).toHaveLength(0); // under 48 bytes, modes 6/7 and every non-client: silence
          return;
        }
        expect(replies).toHaveLength(1);
        const reply = decodeNtpPacket(replies[0]!);
        expect(reply.mode).toBe(NtpMode.SERVER);
        expect(reply.originTimestamp).toBe(Buffer.from(datagram).readBigUInt64BE(40));
      }),
      fcOptions(300),
    );
  });

  it.each([
    ['monlist (mode 7), 8 bytes', MONLIST],
    ['monlist (mode 7), 48 bytes', pad(MONLIST, 48)],
    ['monlist (mode 7), 192 bytes', pad(MONLIST, 192)],
    ['control readvar (mode 6), 12 bytes', CONTROL_READVAR],
    ['control readvar (mode 6), 48 bytes', pad(CONTROL_READVAR, 48)],
    ['47-byte client request', clientRequest().subarray(0, 47)],
  ])('%s gets no reply', async (_name, datagram) => {
    const { port, service } = await startTime();
    const peer = await udpPeer(port);
    expect(await repliesTo(peer, datagram)).toEqual([]);
    expect(service.stats.ntpReplies).toBe(1); // the probe alone
  });

  it('rate-limits a flooding source while another source is still answered', async () => {
    const { port, service } = await startTime({ ntpRate: 0.01, ntpBurst: 5 });
    const flooder = await udpPeer(port, '127.0.0.1');
    const other = await udpPeer(port, '127.0.0.2');
    for (let i = 0; i < 50; i++) await flooder.send(clientRequest());
    // The other source is answered (its own bucket) …
    await other.send(clientRequest());
    expect((await other.next(2000))?.length).toBe(48);
    // … and the flooder got exactly its burst (the service handles datagrams in order).
    const answered = await flooder.collect(200);
    expect(answered).toHaveLength(5);
    expect(service.stats.dropped.rateLimited).toBe(45);
  });

  it('rate-limits the amplifying text reply more strictly, separately from NTP', async () => {
    const { port } = await startTime({ textRate: 0.01, textBurst: 3 });
    const peer = await udpPeer(port);
    for (let i = 0; i < 20; i++) await peer.send(Buffer.from('time'));
    const texts = await repliesTo(peer, Buffer.from('time'));
    expect(texts).toHaveLength(3); // and the NTP probe was still answered
  });

  it('forged sources cannot grow the rate-limit table past maxSources', async () => {
    const { port, service } = await startTime({ maxSources: 8 });
    for (let i = 2; i < 42; i++) {
      const peer = await udpPeer(port, `127.0.0.${i}`);
      await peer.send(clientRequest());
      expect(await peer.next(2000)).not.toBeNull();
      await peer.close();
    }
    expect(service.stats.sources).toBe(8);
  });

  it('never runs what a datagram says (the seed passed it to a shell)', async () => {
    const { port } = await startTime();
    const peer = await udpPeer(port);
    const marker = join(await tempDir(), 'pwned');
    for (const command of [`touch ${marker}`, `time; touch ${marker}`, `touch ${marker}`.padEnd(64, ' ')]) {
      expect(await repliesTo(peer, Buffer.from(command))).toEqual([]);
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('malformed datagrams are dropped and counted; the service keeps answering', async () => {
    const { port, service } = await startTime();
    const peer = await udpPeer(port);
    const garbage = [new Uint8Array(0), Uint8Array.of(0xff), new Uint8Array(1500).fill(0xff), new Uint8Array(60_000).fill(0x2b), Buffer.from('rm -rf /; time')];
    for (const datagram of garbage) await peer.send(datagram);
    await peer.send(clientRequest(4, 42n));
    const reply = await peer.next(2000);
    expect(reply).not.toBeNull();
    expect(decodeNtpPacket(reply!).originTimestamp).toBe(42n);
    const dropped = service.stats.dropped;
    expect(dropped.short + dropped.version + dropped.mode).toBe(garbage.length);
    expect(dropped.error).toBe(0);
  });
});
