// `sockbridge serve time` and `sockbridge time` as a user runs them (bin/sockbridge → dist/;
// `npm run build:server` first).
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli, stopAllCli } from '../../helpers/cli.js';

const sockets: dgram.Socket[] = [];
afterEach(async () => {
  await stopAllCli();
  await Promise.all(sockets.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function serveTime(...args: string[]): Promise<number> {
  const server = startCli(['serve', 'time', '--port', '0', ...args]);
  const m = await server.waitFor(/sockbridge time listening on udp:\/\/127\.0\.0\.1:(\d+)/);
  await server.waitFor(/ready/);
  return Number(m[1]);
}

const SAMPLE_LINE = /^server 127\.0\.0\.1, stratum 10, offset [+-]\d+\.\d{6}, delay \d+\.\d{5}$/;

describe('sockbridge time', () => {
  it('prints one ntpdate-style line per sample and a summary with the best offset', async () => {
    const port = await serveTime();
    const { code, stdout, stderr } = await runCli(['time', `127.0.0.1:${port}`, '--samples', '3', '--interval', '10']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const line of lines.slice(0, 3)) expect(line).toMatch(SAMPLE_LINE);
    expect(lines[3]).toMatch(/^\d\d \w{3} \d\d:\d\d:\d\d sockbridge time: server 127\.0\.0\.1 offset [+-]\d+\.\d{6} sec, delay \d+\.\d{5} sec \(best of 3\)$/);
  });

  it('--text prints the seed text reply', async () => {
    const port = await serveTime();
    const { code, stdout } = await runCli(['time', `127.0.0.1:${port}`, '--text']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);
  });

  it('serve time --no-text: --text times out with one clear line and exit 1', async () => {
    const port = await serveTime('--no-text');
    const { code, stdout, stderr } = await runCli(['time', `127.0.0.1:${port}`, '--text', '--timeout', '300']);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/timed out after 300 ms/);
  });

  it('a server that never answers: one clear line, exit 1, no stack trace', async () => {
    const silent = dgram.createSocket('udp4');
    sockets.push(silent);
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    const { code, stderr } = await runCli(['time', `127.0.0.1:${silent.address().port}`, '--samples', '1', '--timeout', '300']);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it.each([[['time']], [['time', '127.0.0.1:7004', '--samples', '0']], [['time', 'nonsense']], [['serve', 'time', '--stratum', '16']]])(
    'bad arguments %j: exit 2',
    async (args) => {
      const { code, stderr } = await runCli(args);
      expect(code).toBe(2);
      expect(stderr).toMatch(/^sockbridge: /);
    },
  );
});
