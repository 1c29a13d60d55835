// The time service (UDP, default port 7004): an NTP server (RFC 5905) for standard clients
// (chronyd, ntpdate, the gateway's ntp-client) and the seed's text request `time`.
//
// Rules that make it safe to expose (each has a test in test/adversarial/time-udp.test.ts):
// - No amplification: an NTP reply is 48 bytes and only a request of ≥ 48 bytes is answered;
//   extension fields and MACs (RFC 7822) are never echoed. Control (mode 6) and private
//   (mode 7, ntpd's monlist: 556× amplification, CVE-2013-5211) modes and every mode other
//   than client get no answer at all.
// - The seed's 4-byte `time` is the one reply larger than its request (19 bytes), so it has its
//   own stricter per-source limit and can be switched off (`text: false`, `--no-text`).
// - Per-source token buckets (IPv4 address, IPv6 /64) in a bounded LRU: forged source
//   addresses cannot grow memory.
// - Malformed datagrams are dropped silently (counted, logged at debug): UDP has no connection
//   to close and an error reply would itself be a reflection vector.
// - A datagram's bytes are never executed or interpreted beyond the fields above (the seed ran
//   them in a shell).

import dgram, { type RemoteInfo } from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import {
  decodeNtpPacket,
  encodeNtpPacket,
  LeapIndicator,
  NTP_MAX_STRATUM,
  NTP_PACKET_BYTES,
  NtpMode,
  ntpShortFromSeconds,
  ntpTimestampFromUnixNs,
  peekNtpModeVersion,
  referenceIdFromIPv4,
  referenceIdFromText,
} from '../../protocol/ntp-packet.js';
import { encodeTimeTextReply, isTimeTextRequest } from '../../protocol/time-text.js';
import { hostSchema, loadConfig, portSchema } from '../../server/config.js';
import { silentLogger } from '../lib/tcp-service.js';
import { measurePrecision, WallClock } from './clock.js';
import { sourceKey, SourceRateLimiter } from './source-rate-limiter.js';

export interface TimeOptions {
  readonly host: string;
  readonly port: number;
  /** answer the seed's text request `time` */
  readonly text: boolean;
  /** stratum announced in replies (1..15) */
  readonly stratum: number;
  /** dotted IPv4 (stratum ≥ 2) or up to 4 ASCII characters (stratum 1) */
  readonly referenceId: string;
  /** root dispersion announced, ms: the error we admit to for an undisciplined clock */
  readonly rootDispersionMs: number;
  /** NTP replies per second per source address, sustained, and the burst allowed */
  readonly ntpRate: number;
  readonly ntpBurst: number;
  /** text replies (the amplifying 4 → 19 bytes) per second per source address, and burst */
  readonly textRate: number;
  readonly textBurst: number;
  /** size of the per-source rate-limit table (LRU) */
  readonly maxSources: number;
  /** replies waiting in the socket's send queue beyond which new requests are dropped */
  readonly maxSendQueue: number;
}

// Stratum 10 with reference id 127.127.1.1 is what chrony itself announces when it serves an
// undisciplined local clock (`local stratum 10`; chrony's reference.c uses 0x7F7F0101, the
// address ntpd's local clock driver "LOCAL(1)" made customary). chronyd accepts any stratum
// 1..15 whose root distance is under `maxdistance` (3 s); 10 is high enough that any real
// upstream source (stratum 1-4) always wins a client's selection over this one.
export const timeOptionsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    host: hostSchema,
    port: portSchema(7004),
    text: { type: 'boolean', default: true },
    stratum: { type: 'integer', minimum: 1, maximum: NTP_MAX_STRATUM, default: 10 },
    referenceId: { type: 'string', pattern: '^(?:\\d{1,3}(?:\\.\\d{1,3}){3}|[\\x20-\\x7e]{1,4})$', default: '127.127.1.1' },
    rootDispersionMs: { type: 'number', minimum: 0, maximum: 16000, default: 10 },
    ntpRate: { type: 'number', exclusiveMinimum: 0, default: 8 },
    ntpBurst: { type: 'integer', minimum: 1, default: 16 },
    textRate: { type: 'number', exclusiveMinimum: 0, default: 1 },
    textBurst: { type: 'integer', minimum: 1, default: 4 },
    maxSources: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 10_000 },
    maxSendQueue: { type: 'integer', minimum: 1, default: 1024 },
  },
} as const;

export type TimeDropReason = 'short' | 'version' | 'mode' | 'controlMode' | 'textDisabled' | 'rateLimited' | 'backpressure' | 'error';

export interface TimeStats {
  ntpReplies: number;
  /** source addresses tracked by the rate limiters (bounded by maxSources each) */
  sources: number;
  textReplies: number;
  dropped: Record<TimeDropReason, number>;
}

function encodeReferenceId(text: string): number {
  return /^\d{1,3}(?:\.\d{1,3}){3}$/.test(text) ? referenceIdFromIPv4(text) : referenceIdFromText(text);
}

export class TimeService {
  readonly options: Readonly<TimeOptions>;
  private readonly logger: Logger;
  private readonly clock = new WallClock();
  private readonly precision = measurePrecision();
  private readonly referenceId: number;
  private readonly ntpLimiter: SourceRateLimiter;
  private readonly textLimiter: SourceRateLimiter;
  private socket: dgram.Socket | undefined;
  private readonly counters: TimeStats = {
    ntpReplies: 0,
    sources: 0,
    textReplies: 0,
    dropped: { short: 0, version: 0, mode: 0, controlMode: 0, textDisabled: 0, rateLimited: 0, backpressure: 0, error: 0 },
  };

  constructor(options: Partial<TimeOptions>, deps: { logger?: Logger } = {}) {
    this.options = loadConfig<TimeOptions>(timeOptionsSchema, { base: options });
    this.logger = deps.logger ?? silentLogger;
    this.referenceId = encodeReferenceId(this.options.referenceId);
    this.ntpLimiter = new SourceRateLimiter({ perSecond: this.options.ntpRate, burst: this.options.ntpBurst }, this.options.maxSources);
    this.textLimiter = new SourceRateLimiter({ perSecond: this.options.textRate, burst: this.options.textBurst }, this.options.maxSources);
  }

  start(): Promise<AddressInfo> {
    const socket = dgram.createSocket({ type: net.isIPv6(this.options.host) ? 'udp6' : 'udp4' });
    this.socket = socket;
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.options.port, this.options.host, () => {
        socket.off('error', reject);
        // After binding, a socket error (e.g. ICMP noise) is logged; it never ends the service.
        socket.on('error', (err) => this.logger.warn({ err }, 'time socket error'));
        resolve(socket.address());
      });
    });
  }

  address(): AddressInfo {
    if (!this.socket) throw new Error('TimeService.address() called before start()');
    return this.socket.address();
  }

  /** Counters of replies and dropped datagrams, by reason (a snapshot). */
  get stats(): TimeStats {
    return { ...structuredClone(this.counters), sources: Math.max(this.ntpLimiter.size, this.textLimiter.size) };
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (!socket) return;
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve(); // never bound (start failed)
      }
    });
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    // T2 (RFC 5905 §8): taken before anything else looks at the datagram.
    const receivedNs = this.clock.nowNs();
    try {
      this.handle(msg, rinfo, receivedNs);
    } catch (err) {
      // Unreachable by design (every branch below checks its input first); kept so that no
      // datagram can ever take the service down.
      this.drop('error', rinfo, msg.length);
      this.logger.error({ err }, 'time request failed');
    }
  }

  private handle(msg: Buffer, rinfo: RemoteInfo, receivedNs: bigint): void {
    if (isTimeTextRequest(msg)) {
      if (!this.options.text) return this.drop('textDisabled', rinfo, msg.length);
      if (!this.textLimiter.take(sourceKey(rinfo.address))) return this.drop('rateLimited', rinfo, msg.length);
      this.send(encodeTimeTextReply(new Date(Number(receivedNs / 1_000_000n))), rinfo, () => this.counters.textReplies++);
      return;
    }
    // Never answer with more bytes than arrived: a reply is 48 bytes, so shorter requests get nothing.
    if (msg.length < NTP_PACKET_BYTES) return this.drop('short', rinfo, msg.length);
    const { mode, version } = peekNtpModeVersion(msg)!;
    // Versions 1..4 are answered (NTPv4 servers stay compatible with older clients, RFC 5905 §1,
    // as chrony and ntpd do); 0 and the undefined 5..7 are not.
    if (version < 1 || version > 4) return this.drop('version', rinfo, msg.length);
    // NTPv1 (RFC 1059) clients may leave the mode 0 ("unspecified"); like chrony, treat a plain
    // 48-byte v1 mode-0 packet as a client request. Never reply with mode 0.
    const isClient = mode === NtpMode.CLIENT || (version === 1 && mode === NtpMode.RESERVED && msg.length === NTP_PACKET_BYTES);
    if (!isClient) return this.drop(mode === NtpMode.CONTROL || mode === NtpMode.PRIVATE ? 'controlMode' : 'mode', rinfo, msg.length);
    if (!this.ntpLimiter.take(sourceKey(rinfo.address))) return this.drop('rateLimited', rinfo, msg.length);

    const request = decodeNtpPacket(msg);
    const receive = ntpTimestampFromUnixNs(receivedNs);
    const reply = encodeNtpPacket({
      leap: LeapIndicator.NONE,
      version: request.version,
      mode: NtpMode.SERVER,
      stratum: this.options.stratum,
      poll: request.poll,
      precision: this.precision,
      rootDelay: 0, // we are our own reference: no path to a higher stratum
      rootDispersion: ntpShortFromSeconds(this.options.rootDispersionMs / 1000),
      referenceId: this.referenceId,
      // The local clock is its own reference, "set" continuously: the last whole second.
      referenceTimestamp: receive & ~0xffff_ffffn,
      // §8: the origin is the client's transmit timestamp, bit for bit; it is how the client
      // matches our reply to its request and rejects forged ones.
      originTimestamp: request.transmitTimestamp,
      receiveTimestamp: receive,
      transmitTimestamp: 0n,
    });
    // T3: as late as possible, written into the encoded bytes just before the send.
    new DataView(reply.buffer, reply.byteOffset).setBigUint64(40, ntpTimestampFromUnixNs(this.clock.nowNs()));
    this.send(reply, rinfo, () => this.counters.ntpReplies++);
  }

  private send(bytes: Uint8Array, rinfo: RemoteInfo, onSent: () => void): void {
    const socket = this.socket;
    if (!socket) return;
    // UDP's backpressure: when the kernel cannot keep up, libuv queues sends; past a bound, drop
    // new requests instead of queueing without limit.
    if (socket.getSendQueueCount() >= this.options.maxSendQueue) return this.drop('backpressure', rinfo, bytes.length);
    socket.send(bytes, rinfo.port, rinfo.address, (err) => {
      if (err) this.logger.debug({ err, remote: rinfo.address }, 'time reply not sent');
      else onSent();
    });
  }

  private drop(reason: TimeDropReason, rinfo: RemoteInfo, bytes: number): void {
    this.counters.dropped[reason]++;
    // The address and size, never the contents.
    this.logger.debug({ reason, remote: rinfo.address, port: rinfo.port, bytes }, 'time datagram dropped');
  }
}
