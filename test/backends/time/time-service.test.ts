import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TimeService, type TimeOptions } from '../../../backends/time/time-service.js';
import { isSockbridgeError } from '../../../protocol/errors.js';
import { decodeNtpPacket, formatReferenceId, NtpMode, unixMsFromNtpTimestamp } from '../../../protocol/ntp-packet.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';
import { clientRequest, closeAllPeers, udpPeer } from './time-kit.js';

const services: TimeService[] = [];

async function startTime(options: Partial<TimeOptions> = {}) {
  const service = new TimeService({ port: 0, ...options });
  services.push(service);
  const address = await service.start();
  return { service, port: address.port };
}

afterEach(async () => {
  await closeAllPeers();
  await Promise.all(services.splice(0).map((s) => s.close()));
  await removeTempDirs();
});

describe('TimeService: the seed text request', () => {
  it('answers exactly the 4 bytes `time` with the 19-byte local time', async () => {
    const { port } = await startTime();
    const peer = await udpPeer(port);
    await peer.send(Buffer.from('time'));
    const reply = await peer.next();
    expect(reply).not.toBeNull();
    expect(reply!.length).toBe(19);
    expect(reply!.toString('ascii')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    // Within a couple of seconds of our own local clock (the date parses as local time).
    expect(Math.abs(new Date(reply!.toString('ascii').replace(' ', 'T')).getTime() - Date.now())).toBeLessThan(2000);
  });

  it("answers the seed's own Python client (the course's UDP client, port filled in)", async () => {
    const { port } = await startTime();
    // The seed client's loop body, once: input → strip → sendto → recvfrom → print.
    const script = [
      'import socket, sys',
      'client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
      'client.settimeout(5)',
      "msg = sys.stdin.readline().strip()",
      `client.sendto(msg.encode('utf-8'), ('127.0.0.1', ${port}))`,
      'data, server_addr = client.recvfrom(1024)',
      "print(data.decode('utf-8'))",
    ].join('\n');
    const child = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end('time\n');
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    expect(out).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);
  });

  it('also answers `time\\n` as sent by `nc -u`', async () => {
    const { port } = await startTime();
    const peer = await udpPeer(port);
    await peer.send(Buffer.from('time\r\n'));
    expect((await peer.next())?.length).toBe(19);
  });

  it('text: false answers no text, and still answers NTP', async () => {
    const { port, service } = await startTime({ text: false });
    const peer = await udpPeer(port);
    await peer.send(Buffer.from('time'));
    await peer.send(clientRequest());
    const reply = await peer.next();
    expect(reply?.length).toBe(48); // the NTP reply, not a text line
    expect(await peer.next(300)).toBeNull();
    expect(service.stats.dropped.textDisabled).toBe(1);
  });
});

describe('TimeService: NTP', () => {
  it('answers an NTPv4 client request with a correct mode-4 reply (RFC 5905 §7.3, §8)', async () => {
    const { port } = await startTime();
    const peer = await udpPeer(port);
    const request = clientRequest(4, 0x0123_4567_89ab_cdefn, 7);
    const before = Date.now();
    await peer.send(request);
    const bytes = await peer.next();
    const after = Date.now();
    expect(bytes?.length).toBe(48);
    const reply = decodeNtpPacket(bytes!);
    expect(reply.leap).toBe(0);
    expect(reply.version).toBe(4);
    expect(reply.mode).toBe(NtpMode.SERVER);
    expect(reply.stratum).toBe(10);
    expect(reply.poll).toBe(7);
    expect(reply.precision).toBeLessThanOrEqual(-10);
    expect(reply.precision).toBeGreaterThanOrEqual(-29);
    expect(reply.rootDelay).toBe(0);
    expect(reply.rootDispersion).toBeGreaterThan(0);
    expect(formatReferenceId(reply.referenceId, reply.stratum)).toBe('127.127.1.1');
    expect(reply.originTimestamp).toBe(0x0123_4567_89ab_cdefn);
    expect(reply.receiveTimestamp).toBeLessThanOrEqual(reply.transmitTimestamp);
    expect(reply.referenceTimestamp).toBeLessThanOrEqual(reply.receiveTimestamp);
    for (const ts of [reply.receiveTimestamp, reply.transmitTimestamp]) {
      const ms = unixMsFromNtpTimestamp(ts);
      expect(ms).toBeGreaterThan(before - 1000);
      expect(ms).toBeLessThan(after + 1000);
    }
    // Sub-millisecond digits are real (hrtime), not Date.now()'s whole milliseconds.
    const fractions = [reply.receiveTimestamp, reply.transmitTimestamp].map((ts) => unixMsFromNtpTimestamp(ts) % 1);
    expect(fractions.some((f) => f !== 0)).toBe(true);
  });

  it.each([3, 2, 1])('answers an NTPv%i client with its own version', async (version) => {
    const { port } = await startTime();
    const peer = await udpPeer(port);
    await peer.send(clientRequest(version));
    const reply = decodeNtpPacket((await peer.next())!);
    expect(reply.version).toBe(version);
    expect(reply.mode).toBe(NtpMode.SERVER);
  });

  it('answers an NTPv1 mode-0 request as a client, never with mode 0', async () => {
    const { port } = await startTime();
    const peer = await udpPeer(port);
    const request = clientRequest(1);
    request[0] = (1 << 3) | 0; // VN 1, mode 0
    await peer.send(request);
    const reply = decodeNtpPacket((await peer.next())!);
    expect(reply.mode).toBe(NtpMode.SERVER);
    expect(reply.version).toBe(1);
  });

  it('announces the configured stratum and reference id', async () => {
    const { port } = await startTime({ stratum: 1, referenceId: 'LOCL' });
    const peer = await udpPeer(port);
    await peer.send(clientRequest());
    const reply = decodeNtpPacket((await peer.next())!);
    expect(reply.stratum).toBe(1);
    expect(formatReferenceId(reply.referenceId, 1)).toBe('LOCL');
  });

  it('refuses invalid options with SB_ERR_CONFIG_INVALID', () => {
    for (const bad of [{ stratum: 16 }, { stratum: 0 }, { referenceId: 'TOOLONG' }, { ntpBurst: 0 }, { bogus: 1 }]) {
      try {
        new TimeService(bad as Partial<TimeOptions>);
        throw new Error(`accepted ${JSON.stringify(bad)}`);
      } catch (err) {
        expect(isSockbridgeError(err, 'SB_ERR_CONFIG_INVALID')).toBe(true);
      }
    }
  });

  it('close() before start() and twice is harmless; the port is released', async () => {
    const { service, port } = await startTime();
    await service.close();
    await service.close();
    const again = await startTime({ port });
    expect(again.port).toBe(port);
    await new TimeService({ port: 0 }).close();
  });
});

describe('TimeService: chronyd accepts it', () => {
  const CHRONYD = '/usr/sbin/chronyd';

  it('chronyd -Q measures an offset under 1 ms', async (ctx) => {
    if (!existsSync(CHRONYD)) {
      // In CI (.ci/run installs chrony) a missing chronyd is a failure, never a silent pass.
      if (process.env['CI']) throw new Error(`${CHRONYD} is missing: install the chrony package`);
      ctx.skip();
    }
    const { port } = await startTime();
    const dir = await tempDir();
    const conf = join(dir, 'chrony.conf');
    // Own pid file and no command port, so it never touches a system chronyd.
    await writeFile(conf, `server 127.0.0.1 port ${port} iburst\npidfile ${join(dir, 'chronyd.pid')}\ncmdport 0\n`);
    const child = spawn(CHRONYD, ['-Q', '-f', conf, '-t', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    const m = /System clock wrong by (-?\d+\.\d+) seconds/.exec(output);
    expect(m, `chronyd (exit ${code}) said:\n${output}`).not.toBeNull();
    expect(Math.abs(Number(m![1])), output).toBeLessThan(0.001);
  }, 25_000);
});
