import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli, stopAllCli } from '../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';

afterEach(async () => {
  await stopAllCli();
  await removeTempDirs();
});

const FREE_PORTS = ['--port', '0', '--chat-port', '0', '--chat-line-port', '0', '--exec-port', '0', '--files-port', '0', '--time-port', '0'];

async function waitHealthy(url: string): Promise<Record<string, { status: string }>> {
  for (let i = 0; i < 50; i++) {
    const health = (await (await fetch(`${url}api/health`)).json()) as { services: Record<string, { status: string }> };
    if (Object.values(health.services).every((s) => s.status === 'up')) return health.services;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('backends never came up');
}

describe('sockbridge start', () => {
  it('prints the URL and the generated admin password once; health reports the four backends up; the admin logs in', async () => {
    const data = await tempDir();
    const proc = startCli(['start', '--data', data, ...FREE_PORTS], { env: { SOCKBRIDGE_ADMIN_PASSWORD: '' } });
    const [, password] = await proc.waitFor(/sockbridge: created account admin with password (\S+)/);
    const [, url] = await proc.waitFor(/sockbridge: open (http:\/\/127\.0\.0\.1:\d+\/)/);
    const services = await waitHealthy(url!);
    expect(Object.keys(services).sort()).toEqual(['chat', 'exec', 'files', 'time']);
    const login = await fetch(`${url}api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
    expect(login.status).toBe(200);
    expect(await login.json()).toMatchObject({ username: 'admin', role: 'admin' });
    // what a person reads first: how to change that password, and no JSON request log in between
    expect(proc.stdout()).toContain(`sockbridge: it is shown only this once; change it with: sockbridge user passwd admin --data ${data}`);
    expect(proc.stderr()).not.toMatch(/"level":30/);
    await proc.stop();

    // second start: the account exists, no new password is printed
    const again = startCli(['start', '--data', data, ...FREE_PORTS]);
    await again.waitFor(/sockbridge: open http/);
    expect(again.stdout()).not.toContain('created account');
  });

  it('takes the first admin password from SOCKBRIDGE_ADMIN_PASSWORD', async () => {
    const data = await tempDir();
    const proc = startCli(['start', '--data', data, ...FREE_PORTS], { env: { SOCKBRIDGE_ADMIN_PASSWORD: 'from-the-env-123' } });
    const [, url] = await proc.waitFor(/sockbridge: open (http:\/\/127\.0\.0\.1:\d+\/)/);
    expect(proc.stdout()).not.toContain('from-the-env-123');
    const login = await fetch(`${url}api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'from-the-env-123' }) });
    expect(login.status).toBe(200);
  });

  it('refuses a bad port with exit 2 before creating or starting anything', async () => {
    const data = `${await tempDir()}/data`;
    const { code, stderr } = await runCli(['start', '--data', data, '--time-port', 'x']);
    expect(code).toBe(2);
    expect(stderr).toBe('sockbridge: --time-port must be an integer (got "x")\n');
    const range = await runCli(['start', '--data', data, '--chat-line-port', '65536']);
    expect(range.code).toBe(2);
    expect(range.stderr).toBe('sockbridge: --chat-line-port must be <= 65535 (got 65536)\n');
    expect(existsSync(data)).toBe(false);
  });

  it('--config: unknown top-level keys, a bad top-level value, a section that is no object and a section key start sets itself are refused with exit 2, before anything is created', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    const refusals: [unknown, string][] = [
      [{ port: 0, bogusKey: 1 }, 'sockbridge: invalid configuration: unknown option "bogusKey" (--bogus-key); remove it or check its spelling\n'],
      [{ port: 'abc' }, 'sockbridge: invalid configuration: --port / "port" must be an integer (got "abc")\n'],
      [{ gateway: 1 }, 'sockbridge: invalid configuration: "gateway" must be a JSON object (got 1)\n'],
      [{ chat: { port: 9000 } }, 'sockbridge: invalid configuration: "chat.port" cannot be set in a start config: use "chatPort" (--chat-port)\n'],
      [{ gateway: { files: 'tcp://127.0.0.1:1' } }, 'sockbridge: invalid configuration: "gateway.files" cannot be set in a start config: start connects the gateway to its own files\n'],
    ];
    for (const [config, stderr] of refusals) {
      await writeFile(join(dir, 'c.json'), JSON.stringify(config));
      const r = await runCli(['start', '--data', data, '--config', join(dir, 'c.json')]);
      expect(r.code, JSON.stringify(config)).toBe(2);
      expect(r.stderr, JSON.stringify(config)).toBe(stderr);
    }
    const missing = await runCli(['start', '--data', data, '--config', join(dir, 'missing.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(`sockbridge: cannot read config file ${join(dir, 'missing.json')}: no such file\n`);
    expect(existsSync(data)).toBe(false);
  });

  it('--config: a section is checked against its component\'s options before anything is created or started; errors name the key by its place in the file', async () => {
    const dir = await tempDir();
    const data = join(dir, 'data');
    const refusals: [unknown, string][] = [
      [{ gateway: { limits: { bogus: 1 } } }, 'sockbridge: invalid configuration: "gateway.limits.bogus" is not an option; remove it or check its spelling\n'],
      [{ files: { maxFileSize: 'abc' } }, 'sockbridge: invalid configuration: "files.maxFileSize" must be an integer (got "abc")\n'],
      [{ chat: { maxConnections: 0 } }, 'sockbridge: invalid configuration: "chat.maxConnections" must be >= 1 (got 0)\n'],
      [{ time: { bogus: true } }, 'sockbridge: invalid configuration: "time.bogus" is not an option; remove it or check its spelling\n'],
      [{ gateway: { trustProxy: ['not-an-address'] } }, 'sockbridge: invalid configuration: "trustProxy" entry "not-an-address" is not an IP address or CIDR; list the proxies\' addresses (e.g. ["127.0.0.1", "10.0.0.0/8"]) or give their number (e.g. 1)\n'],
    ];
    for (const [config, stderr] of refusals) {
      await writeFile(join(dir, 'c.json'), JSON.stringify(config));
      const r = await runCli(['start', '--data', data, ...FREE_PORTS, '--config', join(dir, 'c.json')]);
      expect(r.code, JSON.stringify(config)).toBe(2);
      expect(r.stderr, JSON.stringify(config)).toBe(stderr);
      // no DATA/exec.secret, chat.sqlite or files/: nothing at all
      expect(existsSync(data), JSON.stringify(config)).toBe(false);
    }
  });

  it('--config: data, port and every backend port come from the top level, camelCased; a flag wins over the file', async () => {
    const dir = await tempDir();
    const data = join(dir, 'from-config');
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      // the file's chatPort is taken: only the flag's 0 lets start come up
      // and a partial gateway.limits: the rest keep their defaults (a regression refused every limit left out)
      const config = { data, port: 0, chatPort: taken, chatLinePort: 0, execPort: 0, filesPort: 0, timePort: 0, gateway: { limits: { maxUploadBytes: 123456 } } };
      await writeFile(join(dir, 'c.json'), JSON.stringify(config));
      const proc = startCli(['start', '--config', join(dir, 'c.json'), '--chat-port', '0'], { cwd: dir, env: { SOCKBRIDGE_ADMIN_PASSWORD: 'from-config-123' } });
      const [, port] = await proc.waitFor(/sockbridge: open http:\/\/127\.0\.0\.1:(\d+)\//);
      expect(Number(port)).not.toBe(8080);
      const [, chat] = await proc.waitFor(/sockbridge: chat tcp:\/\/127\.0\.0\.1:(\d+) /);
      expect([7001, taken]).not.toContain(Number(chat));
      const [, files] = await proc.waitFor(/sockbridge: files tcp:\/\/127\.0\.0\.1:(\d+)\n/);
      expect(Number(files)).not.toBe(7003);
      expect(existsSync(join(data, 'users.sqlite'))).toBe(true);
      const url = `http://127.0.0.1:${port}`;
      const login = await fetch(`${url}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'from-config-123' }) });
      expect(login.status).toBe(200);
      const me = await fetch(`${url}/api/me`, { headers: { cookie: login.headers.get('set-cookie')!.split(';')[0]! } });
      expect(await me.json()).toMatchObject({ limits: { maxUploadBytes: 123456, maxUploadFiles: 100 } });
    } finally {
      blocker.close();
    }
  });

  it('--host 0.0.0.0 prints a URL a person can open (127.0.0.1), then says it listens on all interfaces', async () => {
    const data = await tempDir();
    const proc = startCli(['start', '--data', data, ...FREE_PORTS, '--host', '0.0.0.0'], { env: { SOCKBRIDGE_ADMIN_PASSWORD: 'all-interfaces-123' } });
    const [, url, port] = await proc.waitFor(/sockbridge: open (http:\/\/127\.0\.0\.1:(\d+)\/)\n/);
    await proc.waitFor(new RegExp(`sockbridge: listening on all interfaces \\(0\\.0\\.0\\.0:${port}\\)`));
    expect(proc.stdout()).not.toContain('http://0.0.0.0');
    expect((await fetch(`${url}api/health`)).status).toBe(200);
  });

  it('prints the address each backend really listens on, so --port 0 is usable; each answers there', async () => {
    const data = await tempDir();
    const proc = startCli(['start', '--data', data, ...FREE_PORTS], { env: { SOCKBRIDGE_ADMIN_PASSWORD: 'printed-ports-123' } });
    await proc.waitFor(/sockbridge: open http/);
    const [, chat, line] = await proc.waitFor(/sockbridge: chat tcp:\/\/127\.0\.0\.1:(\d+) \(line mode: tcp:\/\/127\.0\.0\.1:(\d+)\)\n/);
    const [, exec] = await proc.waitFor(/sockbridge: exec tcp:\/\/127\.0\.0\.1:(\d+)\n/);
    const [, files] = await proc.waitFor(/sockbridge: files tcp:\/\/127\.0\.0\.1:(\d+)\n/);
    const [, time] = await proc.waitFor(/sockbridge: time udp:\/\/127\.0\.0\.1:(\d+)\n/);
    const ports = [chat, line, exec, files, time].map(Number);
    expect(ports.every((p) => p > 0)).toBe(true);
    expect(new Set(ports).size).toBe(5);
    // the printed ports are the real ones: the CLI clients reach the services there
    const listed = await runCli(['ls', `127.0.0.1:${files}`]);
    expect(listed.code).toBe(0);
    const measured = await runCli(['time', `127.0.0.1:${time}`, '--samples', '1']);
    expect(measured.code).toBe(0);
    const linePrompt = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(line), '127.0.0.1');
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
        if (text.includes('\n')) socket.end();
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(linePrompt).toContain('welcome');
  });
});
