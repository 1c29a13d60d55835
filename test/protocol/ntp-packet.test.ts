import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSockbridgeError } from '../../protocol/errors.js';
import {
  decodeNtpPacket,
  encodeNtpPacket,
  formatReferenceId,
  NTP_UNIX_EPOCH_OFFSET_SECONDS,
  ntpShortFromSeconds,
  ntpTimestampFromUnixMs,
  ntpTimestampFromUnixNs,
  peekNtpModeVersion,
  referenceIdFromIPv4,
  referenceIdFromText,
  secondsFromNtpShort,
  unixMsFromNtpTimestamp,
  unixNsFromNtpTimestamp,
  type NtpPacket,
} from '../../protocol/ntp-packet.js';
import { fcOptions, hexdump } from '../helpers/fc.js';

// A real exchange between queryNtp and TimeService on 127.0.0.1 (the one dumped in docs/protocol.md).
const REQUEST = Uint8Array.from([
  0x23, // LI 0 (00) | VN 4 (100) | Mode 3 client (011)
  0x00, // Stratum 0: unspecified in a client request
  0x00, // Poll 0
  0x00, // Precision 0
  0x00, 0x00, 0x00, 0x00, // Root Delay 0
  0x00, 0x00, 0x00, 0x00, // Root Dispersion 0
  0x00, 0x00, 0x00, 0x00, // Reference ID 0
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // Reference Timestamp 0
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // Origin Timestamp 0
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // Receive Timestamp 0
  0x06, 0x89, 0x78, 0x73, 0x2c, 0xce, 0x4e, 0xbb, // Transmit Timestamp: the client's random 64-bit nonce
]);

const REPLY = Uint8Array.from([
  0x24, // LI 0 (00) | VN 4 (100, copied) | Mode 4 server (100)
  0x0a, // Stratum 10
  0x00, // Poll 0 (copied)
  0xe9, // Precision -23 (2^-23 s ≈ 119 ns)
  0x00, 0x00, 0x00, 0x00, // Root Delay 0 s
  0x00, 0x00, 0x02, 0x8f, // Root Dispersion 0x028f / 65536 ≈ 0.01 s
  0x7f, 0x7f, 0x01, 0x01, // Reference ID 127.127.1.1 (undisciplined local clock)
  0xee, 0xb1, 0x4b, 0x82, 0x00, 0x00, 0x00, 0x00, // Reference Timestamp 2026-11-25 11:56:50 UTC, whole second
  0x06, 0x89, 0x78, 0x73, 0x2c, 0xce, 0x4e, 0xbb, // Origin Timestamp = the request's transmit, bit for bit
  0xee, 0xb1, 0x4b, 0x82, 0xef, 0xe1, 0xd6, 0xd7, // Receive Timestamp  11:56:50.937040 UTC
  0xee, 0xb1, 0x4b, 0x82, 0xf0, 0x13, 0xe0, 0xb2, // Transmit Timestamp 11:56:50.937803 UTC
]);

const REQUEST_PACKET: NtpPacket = {
  leap: 0, version: 4, mode: 3, stratum: 0, poll: 0, precision: 0, rootDelay: 0, rootDispersion: 0, referenceId: 0,
  referenceTimestamp: 0n, originTimestamp: 0n, receiveTimestamp: 0n, transmitTimestamp: 0x068978732cce4ebbn,
};

const REPLY_PACKET: NtpPacket = {
  leap: 0, version: 4, mode: 4, stratum: 10, poll: 0, precision: -23, rootDelay: 0, rootDispersion: 0x028f,
  referenceId: 0x7f7f0101,
  referenceTimestamp: 0xeeb14b8200000000n,
  originTimestamp: 0x068978732cce4ebbn,
  receiveTimestamp: 0xeeb14b82efe1d6d7n,
  transmitTimestamp: 0xeeb14b82f013e0b2n,
};

const expectNtpError = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    expect(isSockbridgeError(err, 'SB_ERR_NTP_PACKET')).toBe(true);
    return;
  }
  throw new Error('expected SB_ERR_NTP_PACKET');
};

describe('NTP packet fixtures (RFC 5905 §7.3)', () => {
  it.each([
    ['client request', REQUEST, REQUEST_PACKET],
    ['server reply', REPLY, REPLY_PACKET],
  ])('%s: decode, encode and round trip', (_name, bytes, packet) => {
    expect(decodeNtpPacket(bytes)).toEqual(packet);
    expect(encodeNtpPacket(packet)).toEqual(bytes);
    expect(encodeNtpPacket(decodeNtpPacket(bytes))).toEqual(bytes);
  });

  it('reads the reply timestamps as 2026 wall-clock times', () => {
    const pivot = BigInt(Date.UTC(2026, 10, 25)) * 1_000_000n;
    expect(new Date(Number(unixNsFromNtpTimestamp(REPLY_PACKET.referenceTimestamp, pivot) / 1_000_000n)).toISOString()).toBe('2026-11-25T11:56:50.000Z');
    const receive = unixNsFromNtpTimestamp(REPLY_PACKET.receiveTimestamp, pivot);
    const transmit = unixNsFromNtpTimestamp(REPLY_PACKET.transmitTimestamp, pivot);
    expect(receive).toBe(1_795_607_810_937_039_783n);
    expect(transmit - receive).toBe(763_527n); // 0.764 ms inside the server, with sub-ms resolution
    expect(formatReferenceId(REPLY_PACKET.referenceId, REPLY_PACKET.stratum)).toBe('127.127.1.1');
    expect(secondsFromNtpShort(REPLY_PACKET.rootDispersion)).toBeCloseTo(0.01, 4);
  });

  it('the byte dump in docs/protocol.md is this exchange', () => {
    const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    expect(doc).toContain(hexdump(REQUEST));
    expect(doc).toContain(hexdump(REPLY));
  });

  it('ignores extension fields and MACs after the 48-byte header', () => {
    const long = new Uint8Array(48 + 20);
    long.set(REQUEST);
    long.fill(0xff, 48);
    expect(decodeNtpPacket(long)).toEqual(REQUEST_PACKET);
  });

  it('peeks mode and version from the first byte alone', () => {
    expect(peekNtpModeVersion(Uint8Array.of(0x17))).toEqual({ mode: 7, version: 2 }); // ntpdc monlist
    expect(peekNtpModeVersion(Uint8Array.of(0x16))).toEqual({ mode: 6, version: 2 }); // ntpq control
    expect(peekNtpModeVersion(new Uint8Array(0))).toBeNull();
  });
});

describe('NTP packet errors', () => {
  it.each([0, 1, 4, 47])('a %i-byte packet is SB_ERR_NTP_PACKET', (n) => {
    expectNtpError(() => decodeNtpPacket(new Uint8Array(n)));
  });

  it.each<[keyof NtpPacket, unknown]>([
    ['leap', 4], ['version', 8], ['mode', -1], ['stratum', 256], ['poll', 128], ['precision', -129],
    ['rootDelay', 2 ** 32], ['rootDispersion', 1.5], ['referenceId', -1],
    ['transmitTimestamp', 1n << 64n], ['originTimestamp', -1n],
  ])('encode refuses %s = %s instead of truncating it', (field, value) => {
    expectNtpError(() => encodeNtpPacket({ ...REPLY_PACKET, [field]: value }));
  });

  it('random bytes decode or fail only with SB_ERR_NTP_PACKET; any 48 bytes round-trip exactly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (bytes) => {
        let packet: NtpPacket;
        try {
          packet = decodeNtpPacket(bytes);
        } catch (err) {
          expect(isSockbridgeError(err, 'SB_ERR_NTP_PACKET')).toBe(true);
          expect(bytes.length).toBeLessThan(48);
          return;
        }
        expect(encodeNtpPacket(packet)).toEqual(bytes.subarray(0, 48));
      }),
      fcOptions(500),
    );
  });
});

describe('NTP timestamps (RFC 5905 §6)', () => {
  const ERA_1_START_MS = Date.UTC(2036, 1, 7, 6, 28, 16); // 2^32 s after 1900-01-01

  it('the Unix epoch is 2208988800 s into era 0', () => {
    expect(ntpTimestampFromUnixNs(0n)).toBe(0x83aa7e80n << 32n);
    expect(ntpTimestampFromUnixNs(0n) >> 32n).toBe(NTP_UNIX_EPOCH_OFFSET_SECONDS);
  });

  it('fractions: half a second is 0x80000000, 1 ns is 4 units, and the ns survive the round trip', () => {
    expect(ntpTimestampFromUnixMs(500) & 0xffff_ffffn).toBe(0x8000_0000n);
    expect(ntpTimestampFromUnixNs(1n) & 0xffff_ffffn).toBe(4n); // 2^32 / 1e9 = 4.29…, truncated
    expect(unixNsFromNtpTimestamp(ntpTimestampFromUnixNs(1n), 0n)).toBe(1n);
    expect(unixNsFromNtpTimestamp(ntpTimestampFromUnixNs(999_999_999n), 0n)).toBe(999_999_999n);
  });

  it('2036-02-07 06:28:16 UTC wraps the seconds field to 0 (era 1) and is read back across the boundary', () => {
    const wrapNs = BigInt(ERA_1_START_MS) * 1_000_000n;
    expect(ntpTimestampFromUnixNs(wrapNs)).toBe(0n);
    expect(ntpTimestampFromUnixNs(wrapNs - 1_000_000_000n) >> 32n).toBe(0xffff_ffffn);
    // Read from a clock just before the wrap, a small seconds field is the near future (era 1) …
    const before = wrapNs - 10n * 1_000_000_000n;
    expect(unixNsFromNtpTimestamp(5n << 32n, before)).toBe(wrapNs + 5_000_000_000n);
    // … and read from just after it, 0xffffffff is the near past (era 0).
    expect(unixNsFromNtpTimestamp(0xffff_ffffn << 32n, wrapNs + 10_000_000_000n)).toBe(wrapNs - 1_000_000_000n);
    expect(unixMsFromNtpTimestamp(ntpTimestampFromUnixMs(ERA_1_START_MS + 1.25), ERA_1_START_MS)).toBe(ERA_1_START_MS + 1.25);
  });

  it('any instant 1900..2100 round-trips to the nanosecond when read within 68 years of it', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -2_208_988_800n * 1_000_000_000n, max: 4_102_444_800n * 1_000_000_000n }),
        fc.bigInt({ min: -(2n ** 31n - 1n) * 1_000_000_000n, max: (2n ** 31n - 1n) * 1_000_000_000n }),
        (ns, pivotShift) => {
          expect(unixNsFromNtpTimestamp(ntpTimestampFromUnixNs(ns), ns + pivotShift)).toBe(ns);
        },
      ),
      fcOptions(500),
    );
  });

  it('fractional milliseconds keep sub-microsecond precision', () => {
    const ms = 1_795_607_810_937.0398;
    expect(Math.abs(unixMsFromNtpTimestamp(ntpTimestampFromUnixMs(ms), ms) - ms)).toBeLessThan(1e-6 * 1000);
    expectNtpError(() => ntpTimestampFromUnixMs(Number.NaN));
  });

  it('short format is unsigned 16.16 seconds, clamped', () => {
    expect(ntpShortFromSeconds(1)).toBe(0x0001_0000);
    expect(ntpShortFromSeconds(0.5)).toBe(0x0000_8000);
    expect(ntpShortFromSeconds(-3)).toBe(0);
    expect(ntpShortFromSeconds(1e9)).toBe(0xffff_ffff);
    expect(secondsFromNtpShort(0x0002_4000)).toBe(2.25);
  });
});

describe('reference ids', () => {
  it('text at stratum 0/1, dotted quad above', () => {
    expect(referenceIdFromText('LOCL')).toBe(0x4c4f434c);
    expect(referenceIdFromText('GPS')).toBe(0x47505300);
    expect(formatReferenceId(0x47505300, 1)).toBe('GPS');
    expect(formatReferenceId(referenceIdFromText('RATE'), 0)).toBe('RATE');
    expect(referenceIdFromIPv4('127.127.1.1')).toBe(0x7f7f0101);
    expect(formatReferenceId(0x4c4f434c, 2)).toBe('76.79.67.76');
    expectNtpError(() => referenceIdFromText('TOOLONG'));
    expectNtpError(() => referenceIdFromIPv4('256.1.1.1'));
  });
});
