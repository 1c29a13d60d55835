// Proves docker-compose.yml's topology without Docker: every service's command is taken from the
// file, its hosts rewritten to 127.0.0.1, its ports to free ones and /data to a temp dir, and run as
// a process. The gateway then reports all four backends up, and a login + file upload works through it.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SOCKBRIDGE_BIN, startCli, stopAllCli } from './helpers/cli.js';
import { removeTempDirs, tempDir } from './helpers/tmp.js';
import { spawnSync } from 'node:child_process';

afterEach(async () => {
  await stopAllCli();
  await removeTempDirs();
});

interface ComposeService {
  command: string[];
  ports?: string[];
  depends_on?: Record<string, unknown>;
}

const compose = parse(readFileSync(fileURLToPath(new URL('../docker-compose.yml', import.meta.url)), 'utf8')) as {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
};

function freeTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function freeUdpPort(): Promise<number> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4').bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

describe('docker-compose.yml', () => {
  it('publishes only the gateway, keeps data in a named volume, and runs the five services', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['chat', 'exec', 'files', 'gateway', 'init', 'time']);
    expect(compose.services['gateway']!.ports).toEqual(['8080:8080']);
    for (const name of ['chat', 'exec', 'files', 'time']) expect(compose.services[name]!.ports).toBeUndefined();
    expect(Object.keys(compose.volumes)).toEqual(['sockbridge-data']);
  });

  it('runs as a topology: health reports all four up, login and upload work through the gateway', async () => {
    const data = await tempDir();
    const ports: Record<string, number> = {
      '7001': await freeTcpPort(),
      '7002': await freeTcpPort(),
      '7003': await freeTcpPort(),
      '7004': await freeUdpPort(),
      '7005': await freeTcpPort(),
      '8080': await freeTcpPort(),
    };
    const rewrite = (arg: string) =>
      arg
        .replace(/^0\.0\.0\.0$/, '127.0.0.1')
        .replace(/^(tcp|udp):\/\/(chat|exec|files|time):(\d+)$/, (_m, s: string, _h, p: string) => `${s}://127.0.0.1:${ports[p]}`)
        .replace(/^\d{4}$/, (p) => String(ports[p] ?? p))
        .replace(/^\/data/, data)
        .replace(/"\$\$f"/g, '"$f"')
        .replace(/\/data\//g, `${data}/`);

    // init: a shell one-liner (compose's $$ is a literal $)
    const init = compose.services['init']!.command.map(rewrite);
    expect(spawnSync(init[0]!, init.slice(1), { stdio: 'inherit' }).status).toBe(0);

    const run = (name: string, env: Record<string, string> = {}) => {
      const [node, bin, ...args] = compose.services[name]!.command.map(rewrite);
      expect([node, bin]).toEqual(['node', 'bin/sockbridge']);
      expect(SOCKBRIDGE_BIN.endsWith(bin!)).toBe(true);
      return startCli(args, { env: { SOCKBRIDGE_LOG_LEVEL: 'warn', ...env } });
    };
    for (const name of ['chat', 'exec', 'files', 'time']) await run(name).waitFor(/ready|listening/);
    const gateway = run('gateway', { SOCKBRIDGE_ADMIN_PASSWORD: 'compose-admin-pw' });
    const [, url] = await gateway.waitFor(/sockbridge: open (http:\/\/\S+\/)/);
    expect(url).toBe(`http://127.0.0.1:${ports['8080']}/`);

    let services: Record<string, { status: string }> = {};
    for (let i = 0; i < 50; i++) {
      services = ((await (await fetch(`${url}api/health`)).json()) as { services: typeof services }).services;
      if (Object.values(services).every((s) => s.status === 'up')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(Object.fromEntries(Object.entries(services).map(([k, v]) => [k, v.status]))).toEqual({ chat: 'up', exec: 'up', files: 'up', time: 'up' });

    const login = await fetch(`${url}api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'compose-admin-pw' }) });
    expect(login.status).toBe(200);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const form = new FormData();
    form.append('file', new Blob(['through compose\n']), 'compose.txt');
    const origin = url!.slice(0, -1);
    const upload = await fetch(`${url}api/files`, { method: 'POST', headers: { cookie, origin }, body: form });
    expect(upload.status).toBe(201);
    const download = await fetch(`${url}api/files/compose.txt`, { headers: { cookie } });
    expect(await download.text()).toBe('through compose\n');
  }, 30_000);
});
