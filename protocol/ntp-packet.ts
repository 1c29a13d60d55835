// NTPv4 packet codec (RFC 5905 §7.3) and timestamp arithmetic (RFC 5905 §6). Pure: no sockets,
// no clocks (callers pass "now" where era resolution needs it).
//
//   offset  size  field
//    0      1     LI (2 bits) | VN (3 bits) | Mode (3 bits)
//    1      1     Stratum
//    2      1     Poll (int8, log2 seconds)
//    3      1     Precision (int8, log2 seconds)
//    4      4     Root Delay       (NTP short format, unsigned 16.16 seconds)
//    8      4     Root Dispersion  (NTP short format)
//   12      4     Reference ID
//   16      8     Reference Timestamp (NTP timestamp format, 32.32 seconds since the era start)
//   24      8     Origin Timestamp
//   32      8     Receive Timestamp
//   40      8     Transmit Timestamp
//   48      …     extension fields and MAC (RFC 7822): never parsed, never echoed
//
// All integers are big-endian (network order). Timestamps are kept as raw 64-bit bigints so a
// value read from the wire is written back bit for bit (the origin timestamp must be, §8).

import { sbError } from './errors.js';

export const NTP_PACKET_BYTES = 48;

/** Seconds from the NTP prime epoch (1900-01-01, era 0) to the Unix epoch (1970-01-01), RFC 5905 §6. */
export const NTP_UNIX_EPOCH_OFFSET_SECONDS = 2_208_988_800n;

/** One NTP era: the 32-bit seconds field wraps every 2^32 s (next wrap: 2036-02-07 06:28:16 UTC). */
const ERA_SECONDS = 1n << 32n;
const FRACTION_SCALE = 1n << 32n;
const NS_PER_SECOND = 1_000_000_000n;
const UINT64_MAX = (1n << 64n) - 1n;

/** RFC 5905 §7.3 Figure 10. */
export const NtpMode = {
  RESERVED: 0,
  SYMMETRIC_ACTIVE: 1,
  SYMMETRIC_PASSIVE: 2,
  CLIENT: 3,
  SERVER: 4,
  BROADCAST: 5,
  CONTROL: 6,
  PRIVATE: 7,
} as const;

/** RFC 5905 §7.3 Figure 9. 3 = clock unsynchronized. */
export const LeapIndicator = { NONE: 0, ADD_SECOND: 1, DELETE_SECOND: 2, UNSYNCHRONIZED: 3 } as const;

/** Stratum 16 means unsynchronized; 0 is a kiss-o'-death (RFC 5905 §7.3, §7.4). */
export const NTP_MAX_STRATUM = 15;

export interface NtpPacket {
  leap: number;
  version: number;
  mode: number;
  stratum: number;
  /** log2 seconds, int8 */
  poll: number;
  /** log2 seconds, int8 */
  precision: number;
  /** raw NTP short format (16.16 seconds); see secondsFromNtpShort */
  rootDelay: number;
  /** raw NTP short format (16.16 seconds) */
  rootDispersion: number;
  /** uint32: four ASCII characters at stratum 0/1, an IPv4 address (or hash) above */
  referenceId: number;
  /** raw 64-bit NTP timestamps (32.32) */
  referenceTimestamp: bigint;
  originTimestamp: bigint;
  receiveTimestamp: bigint;
  transmitTimestamp: bigint;
}

/**
 * Parses the 48-byte header. Bytes beyond 48 (extension fields, MAC) are ignored. Any field value
 * is structurally valid, so the only failure is a short packet; what a *service* accepts (mode,
 * version) is its own policy.
 */
export function decodeNtpPacket(bytes: Uint8Array): NtpPacket {
  if (!(bytes instanceof Uint8Array)) throw sbError('SB_ERR_NTP_PACKET', 'not a byte array');
  if (bytes.length < NTP_PACKET_BYTES) {
    throw sbError('SB_ERR_NTP_PACKET', `${bytes.length} bytes, an NTP header needs ${NTP_PACKET_BYTES}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, NTP_PACKET_BYTES);
  const first = view.getUint8(0);
  return {
    leap: first >> 6,
    version: (first >> 3) & 0b111,
    mode: first & 0b111,
    stratum: view.getUint8(1),
    poll: view.getInt8(2),
    precision: view.getInt8(3),
    rootDelay: view.getUint32(4),
    rootDispersion: view.getUint32(8),
    referenceId: view.getUint32(12),
    referenceTimestamp: view.getBigUint64(16),
    originTimestamp: view.getBigUint64(24),
    receiveTimestamp: view.getBigUint64(32),
    transmitTimestamp: view.getBigUint64(40),
  };
}

/** Mode and version from the first byte, without decoding the rest (any length ≥ 1). */
export function peekNtpModeVersion(bytes: Uint8Array): { mode: number; version: number } | null {
  const first = bytes[0];
  return first === undefined ? null : { mode: first & 0b111, version: (first >> 3) & 0b111 };
}

function checkInt(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw sbError('SB_ERR_NTP_PACKET', `${field} ${String(value)} is outside ${min}..${max}`);
  }
}

function checkTimestamp(field: string, value: bigint): void {
  if (typeof value !== 'bigint' || value < 0n || value > UINT64_MAX) {
    throw sbError('SB_ERR_NTP_PACKET', `${field} ${String(value)} is not a 64-bit NTP timestamp`);
  }
}

/** Writes exactly 48 bytes; a field out of its range is SB_ERR_NTP_PACKET (never silently truncated). */
export function encodeNtpPacket(packet: NtpPacket): Uint8Array {
  checkInt('leap', packet.leap, 0, 3);
  checkInt('version', packet.version, 0, 7);
  checkInt('mode', packet.mode, 0, 7);
  checkInt('stratum', packet.stratum, 0, 255);
  checkInt('poll', packet.poll, -128, 127);
  checkInt('precision', packet.precision, -128, 127);
  checkInt('rootDelay', packet.rootDelay, 0, 0xffff_ffff);
  checkInt('rootDispersion', packet.rootDispersion, 0, 0xffff_ffff);
  checkInt('referenceId', packet.referenceId, 0, 0xffff_ffff);
  checkTimestamp('referenceTimestamp', packet.referenceTimestamp);
  checkTimestamp('originTimestamp', packet.originTimestamp);
  checkTimestamp('receiveTimestamp', packet.receiveTimestamp);
  checkTimestamp('transmitTimestamp', packet.transmitTimestamp);
  const bytes = new Uint8Array(NTP_PACKET_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, (packet.leap << 6) | (packet.version << 3) | packet.mode);
  view.setUint8(1, packet.stratum);
  view.setInt8(2, packet.poll);
  view.setInt8(3, packet.precision);
  view.setUint32(4, packet.rootDelay);
  view.setUint32(8, packet.rootDispersion);
  view.setUint32(12, packet.referenceId);
  view.setBigUint64(16, packet.referenceTimestamp);
  view.setBigUint64(24, packet.originTimestamp);
  view.setBigUint64(32, packet.receiveTimestamp);
  view.setBigUint64(40, packet.transmitTimestamp);
  return bytes;
}

// ---- timestamps (RFC 5905 §6) ----

const floorDiv = (a: bigint, b: bigint) => (a >= 0n ? a / b : -((-a + b - 1n) / b));
const mod = (a: bigint, b: bigint) => ((a % b) + b) % b;

/**
 * Unix time in nanoseconds → 64-bit NTP timestamp. The seconds field is taken modulo 2^32, so
 * times from 2036-02-07 06:28:16 UTC on land in era 1 and read as small numbers, as on the wire.
 * The fraction is truncated (0.23 ns resolution), so unixNsFromNtpTimestamp gives back the same ns.
 */
export function ntpTimestampFromUnixNs(unixNs: bigint): bigint {
  const seconds = floorDiv(unixNs, NS_PER_SECOND);
  const ns = unixNs - seconds * NS_PER_SECOND;
  const ntpSeconds = mod(seconds + NTP_UNIX_EPOCH_OFFSET_SECONDS, ERA_SECONDS);
  const fraction = (ns * FRACTION_SCALE) / NS_PER_SECOND;
  return (ntpSeconds << 32n) | fraction;
}

/**
 * 64-bit NTP timestamp → Unix nanoseconds. A timestamp does not carry its era, so it is read in
 * the era that puts it closest to `pivotUnixNs` (default: now), within ±68 years (RFC 5905 §6:
 * "the era is determined from context"). This is what keeps the reading right across 2036.
 */
export function unixNsFromNtpTimestamp(timestamp: bigint, pivotUnixNs: bigint = BigInt(Date.now()) * 1_000_000n): bigint {
  checkTimestamp('timestamp', timestamp);
  const seconds32 = timestamp >> 32n;
  const fraction = timestamp & (FRACTION_SCALE - 1n);
  const pivotNtpSeconds = floorDiv(pivotUnixNs, NS_PER_SECOND) + NTP_UNIX_EPOCH_OFFSET_SECONDS;
  const era = floorDiv(pivotNtpSeconds - seconds32 + ERA_SECONDS / 2n, ERA_SECONDS);
  const ntpSeconds = seconds32 + era * ERA_SECONDS;
  // Round to the nearest ns: the truncated fraction is at most 0.233 ns below the true value.
  const ns = (fraction * NS_PER_SECOND + FRACTION_SCALE / 2n) >> 32n;
  return (ntpSeconds - NTP_UNIX_EPOCH_OFFSET_SECONDS) * NS_PER_SECOND + ns;
}

/** Milliseconds (fractional allowed, as from performance.now arithmetic) → NTP timestamp. */
export function ntpTimestampFromUnixMs(unixMs: number): bigint {
  if (!Number.isFinite(unixMs)) throw sbError('SB_ERR_NTP_PACKET', `time ${unixMs} ms is not finite`);
  // Split so the integer part stays exact: ms * 1e6 would exceed 2^53 and lose ~256 ns.
  const whole = Math.floor(unixMs);
  return ntpTimestampFromUnixNs(BigInt(whole) * 1_000_000n + BigInt(Math.round((unixMs - whole) * 1e6)));
}

/** NTP timestamp → milliseconds since the Unix epoch (fractional, ns resolution). */
export function unixMsFromNtpTimestamp(timestamp: bigint, pivotUnixMs: number = Date.now()): number {
  const ns = unixNsFromNtpTimestamp(timestamp, BigInt(Math.floor(pivotUnixMs)) * 1_000_000n);
  const ms = floorDiv(ns, 1_000_000n);
  return Number(ms) + Number(ns - ms * 1_000_000n) / 1e6;
}

/** Seconds → NTP short format (unsigned 16.16), clamped to its range. */
export function ntpShortFromSeconds(seconds: number): number {
  if (!(seconds > 0)) return 0;
  return Math.min(0xffff_ffff, Math.round(seconds * 65536));
}

export function secondsFromNtpShort(value: number): number {
  return value / 65536;
}

// ---- reference IDs (RFC 5905 §7.3 "Reference ID") ----

/** Up to four ASCII characters ("LOCL", "GPS"), NUL-padded: the stratum 0/1 form. */
export function referenceIdFromText(text: string): number {
  if (!/^[\x20-\x7e]{1,4}$/.test(text)) throw sbError('SB_ERR_NTP_PACKET', `reference id "${text}" is not 1-4 ASCII characters`);
  let id = 0;
  for (let i = 0; i < 4; i++) id = (id << 8) | (text.charCodeAt(i) || 0);
  return id >>> 0;
}

/** Dotted IPv4 ("127.127.1.1"): the stratum ≥ 2 form. */
export function referenceIdFromIPv4(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw sbError('SB_ERR_NTP_PACKET', `reference id "${address}" is not a dotted IPv4 address`);
  }
  return parts.reduce((id, p) => id * 256 + p, 0);
}

/** How ntpq and chronyc show a reference id: text at stratum 0 and 1, dotted quad above. */
export function formatReferenceId(referenceId: number, stratum: number): string {
  const bytes = [24, 16, 8, 0].map((shift) => (referenceId >>> shift) & 0xff);
  if (stratum <= 1) {
    const text = String.fromCharCode(...bytes.filter((b) => b !== 0));
    if (/^[\x20-\x7e]*$/.test(text)) return text;
  }
  return bytes.join('.');
}
