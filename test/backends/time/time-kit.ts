// Shared by the time service tests: a raw UDP peer that sends datagrams and collects replies.
import dgram from 'node:dgram';
import { encodeNtpPacket, NtpMode, ntpTimestampFromUnixNs } from '../../../protocol/ntp-packet.js';

export interface UdpPeer {
  socket: dgram.Socket;
  replies: Buffer[];
  send(bytes: Uint8Array): Promise<void>;
  /** Resolves with the next reply, or null if none arrives within `ms`. */
  next(ms?: number): Promise<Buffer | null>;
  /** Waits `ms` and returns (and clears) every reply received meanwhile. */
  collect(ms: number): Promise<Buffer[]>;
  close(): Promise<void>;
}

const peers = new Set<UdpPeer>();

/** A UDP socket bound to `address` (any 127.x.y.z is loopback on Linux: a second "source"). */
export async function udpPeer(port: number, address = '127.0.0.1'): Promise<UdpPeer> {
  const socket = dgram.createSocket('udp4');
  const replies: Buffer[] = [];
  const waiters: ((b: Buffer) => void)[] = [];
  socket.on('message', (msg) => {
    const waiter = waiters.shift();
    if (waiter) waiter(msg);
    else replies.push(msg);
  });
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  const peer: UdpPeer = {
    socket,
    replies,
    send: (bytes) => new Promise((resolve, reject) => socket.send(bytes, port, '127.0.0.1', (err) => (err ? reject(err) : resolve()))),
    next(ms = 1000) {
      const queued = replies.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(onMsg), 1);
          resolve(null);
        }, ms);
        const onMsg = (b: Buffer) => {
          clearTimeout(timer);
          resolve(b);
        };
        waiters.push(onMsg);
      });
    },
    async collect(ms) {
      await new Promise((r) => setTimeout(r, ms));
      return replies.splice(0);
    },
    close: () => {
      peers.delete(peer);
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };
  peers.add(peer);
  return peer;
}

export async function closeAllPeers(): Promise<void> {
  await Promise.all([...peers].map((p) => p.close()));
}

/** A client request as ntpdate/chrony send it: `version`, mode 3, our clock in the transmit field. */
export function clientRequest(version = 4, transmitTimestamp = ntpTimestampFromUnixNs(BigInt(Date.now()) * 1_000_000n), poll = 6): Uint8Array {
  return encodeNtpPacket({
    leap: 0, version, mode: NtpMode.CLIENT, stratum: 0, poll, precision: -20, rootDelay: 0, rootDispersion: 0,
    referenceId: 0, referenceTimestamp: 0n, originTimestamp: 0n, receiveTimestamp: 0n, transmitTimestamp,
  });
}
