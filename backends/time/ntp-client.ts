// Client side of the time service: an SNTP/NTP client (RFC 5905 §8 on-wire protocol, RFC 4330
// client rules) and the seed's text request. Used by `sockbridge time` and by the gateway to
// measure its own offset to the time service and to check that service's health.

import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { isSockbridgeError, sbError, type SockbridgeError } from '../../protocol/errors.js';
import {
  decodeNtpPacket,
  encodeNtpPacket,
  formatReferenceId,
  LeapIndicator,
  NTP_MAX_STRATUM,
  NTP_PACKET_BYTES,
  NtpMode,
  secondsFromNtpShort,
  unixNsFromNtpTimestamp,
} from '../../protocol/ntp-packet.js';
import { decodeTimeTextReply, TIME_TEXT_REQUEST } from '../../protocol/time-text.js';
import { WallClock } from './clock.js';

export interface NtpSample {
  /** server clock minus ours, ms (positive: the server is ahead) */
  offsetMs: number;
  /** round-trip delay, ms, not counting the server's own processing */
  delayMs: number;
  stratum: number;
  /** as ntpq shows it: text at stratum 1, dotted quad above */
  refId: string;
  /** the server's transmit time, ms since the Unix epoch */
  serverTime: number;
  version: number;
  precision: number;
  rootDelayMs: number;
  rootDispersionMs: number;
}

export interface QueryOptions {
  /** default 2000 */
  timeoutMs?: number;
}

export interface SampleOptions extends QueryOptions {
  /** number of exchanges, default 4 (as ntpdate -q) */
  samples?: number;
  /** pause between exchanges, ms, default 250 */
  intervalMs?: number;
}

export interface NtpSamples {
  samples: NtpSample[];
  /** the sample with the lowest delay: the least disturbed by queueing (RFC 5905 §10 clock filter) */
  best: NtpSample;
  /** exchanges that failed (timeouts, rejected replies) */
  failures: SockbridgeError[];
}

const DEFAULT_TIMEOUT_MS = 2000;
const NS_PER_MS = 1_000_000n;

// One anchored clock for the process (anchoring spins up to 1 ms, so it is done once, lazily).
let clock: WallClock | undefined;
const now = () => (clock ??= new WallClock()).nowNs();

const nsToMs = (ns: bigint) => Number(ns) / 1e6;

/**
 * Sends `request` from a fresh connected UDP socket and resolves with the first datagram `accept`
 * turns into a value (undefined: ignore it and keep waiting, so a forged or stale datagram cannot
 * end the exchange early). A connected socket only sees datagrams from host:port, and turns an
 * ICMP port-unreachable into ECONNREFUSED: a closed port fails at once instead of timing out.
 */
function exchange<T>(
  host: string,
  port: number,
  request: Uint8Array,
  what: string,
  timeoutMs: number,
  accept: (msg: Buffer, receivedNs: bigint) => T | undefined,
  beforeSend: () => void = () => {},
): Promise<T> {
  const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => finish(sbError('SB_ERR_TIMEOUT', timeoutMs, `no ${what} reply from ${host}:${port}`)), timeoutMs);
    let done = false;
    const finish = (err: unknown, value?: T) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      try {
        socket.close();
      } catch {
        // already closed by a failed connect
      }
      if (err) reject(err);
      else resolve(value as T);
    };
    socket.on('message', (msg) => {
      const receivedNs = now();
      try {
        const value = accept(msg, receivedNs);
        if (value !== undefined) finish(null, value);
      } catch (err) {
        finish(err);
      }
    });
    const fail = (err: NodeJS.ErrnoException) => {
      const reason = err.code === 'ECONNREFUSED' ? 'nothing is listening on that port' : err.code === 'ENOTFOUND' ? 'no such host' : (err.code ?? err.message);
      finish(sbError('SB_ERR_CONNECT', `udp://${host}:${port}`, reason));
    };
    socket.on('error', fail);
    // connect() resolves the name; its callback receives a lookup failure instead of an 'error' event.
    socket.connect(port, host, (err?: Error) => {
      if (err) return fail(err);
      beforeSend();
      socket.send(request, (sendErr) => {
        if (sendErr) fail(sendErr);
      });
    });
  });
}

/** One NTP exchange: offset and delay per RFC 5905 §8, the reply validated before it is believed. */
export async function queryNtp(host: string, port: number, options: QueryOptions = {}): Promise<NtpSample> {
  // The transmit timestamp we send is a random nonce, not our clock (as chrony does, see
  // draft-ietf-ntp-data-minimization): the server copies it into the origin field, so a reply
  // whose origin differs is forged or stale, and an off-path attacker cannot guess 64 bits.
  const nonce = randomBytes(8).readBigUInt64BE(0) | 1n; // never 0: zero means "not set" (§8)
  const request = encodeNtpPacket({
    leap: LeapIndicator.NONE,
    version: 4,
    mode: NtpMode.CLIENT,
    stratum: 0,
    poll: 0,
    precision: 0,
    rootDelay: 0,
    rootDispersion: 0,
    referenceId: 0,
    referenceTimestamp: 0n,
    originTimestamp: 0n,
    receiveTimestamp: 0n,
    transmitTimestamp: nonce,
  });
  let t1 = 0n;
  return exchange(host, port, request, 'NTP', options.timeoutMs ?? DEFAULT_TIMEOUT_MS, (msg, t4) => {
    if (msg.length < NTP_PACKET_BYTES) return undefined;
    const reply = decodeNtpPacket(msg);
    // Not an answer to this request: ignore it and keep waiting for the real one.
    if (reply.mode !== NtpMode.SERVER || reply.originTimestamp !== nonce) return undefined;
    if (reply.stratum === 0) {
      // Kiss-o'-death (RFC 5905 §7.4): the reference id carries the code, e.g. RATE, DENY.
      throw sbError('SB_ERR_NTP_REPLY', 'NTP', `kiss-o'-death ${formatReferenceId(reply.referenceId, 0)}`);
    }
    if (reply.stratum > NTP_MAX_STRATUM || reply.leap === LeapIndicator.UNSYNCHRONIZED) {
      throw sbError('SB_ERR_NTP_REPLY', 'NTP', `server clock is not synchronized (stratum ${reply.stratum}, leap ${reply.leap})`);
    }
    if (reply.transmitTimestamp === 0n || reply.receiveTimestamp === 0n) {
      throw sbError('SB_ERR_NTP_REPLY', 'NTP', 'receive or transmit timestamp is zero');
    }
    // Timestamps are read in the era closest to our own clock (RFC 5905 §6), so this holds across 2036.
    const t2 = unixNsFromNtpTimestamp(reply.receiveTimestamp, t4);
    const t3 = unixNsFromNtpTimestamp(reply.transmitTimestamp, t4);
    if (t3 < t2) throw sbError('SB_ERR_NTP_REPLY', 'NTP', 'transmit timestamp precedes receive timestamp');
    return {
      offsetMs: nsToMs((t2 - t1 + (t3 - t4)) / 2n),
      delayMs: nsToMs(t4 - t1 - (t3 - t2)),
      stratum: reply.stratum,
      refId: formatReferenceId(reply.referenceId, reply.stratum),
      serverTime: Number(t3 / NS_PER_MS) + Number(t3 % NS_PER_MS) / 1e6,
      version: reply.version,
      precision: reply.precision,
      rootDelayMs: secondsFromNtpShort(reply.rootDelay) * 1000,
      rootDispersionMs: secondsFromNtpShort(reply.rootDispersion) * 1000,
    };
  }, () => {
    t1 = now(); // T1: as late as possible before the datagram leaves
  });
}

/** `samples` exchanges `intervalMs` apart; throws the first failure only if every exchange failed. */
export async function sampleNtp(host: string, port: number, options: SampleOptions = {}): Promise<NtpSamples> {
  const count = Math.max(1, Math.floor(options.samples ?? 4));
  const samples: NtpSample[] = [];
  const failures: SockbridgeError[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, options.intervalMs ?? 250));
    try {
      samples.push(await queryNtp(host, port, options));
    } catch (err) {
      if (!isSockbridgeError(err)) throw err;
      // A closed port will not open between two samples: stop at once.
      if (err.code === 'SB_ERR_CONNECT') throw err;
      failures.push(err);
    }
  }
  const best = samples.reduce<NtpSample | undefined>((b, s) => (b === undefined || s.delayMs < b.delayMs ? s : b), undefined);
  if (!best) throw failures[0]!;
  return { samples, best, failures };
}

/** The seed's exchange: sends the 4 bytes `time`, returns the server's `YYYY-MM-DD HH:MM:SS`. */
export function queryText(host: string, port: number, options: QueryOptions = {}): Promise<string> {
  return exchange(host, port, Buffer.from(TIME_TEXT_REQUEST, 'ascii'), 'text', options.timeoutMs ?? DEFAULT_TIMEOUT_MS, (msg) => decodeTimeTextReply(msg));
}
