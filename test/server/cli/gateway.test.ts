import { writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, startCli, stopAllCli } from '../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';

afterEach(async () => {
  await stopAllCli();
  await removeTempDirs();
});

describe('sockbridge gateway', () => {
  it('refuses bad backend URLs and raw targets with exit 2 and a hint', async () => {
    const data = await tempDir();
    const badUrl = await runCli(['gateway', '--port', '0', '--data', data, '--files', 'http://127.0.0.1:7003']);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('--files');
    const badRaw = await runCli(['gateway', '--port', '0', '--data', data, '--raw', 'vnc']);
    expect(badRaw.code).toBe(2);
    expect(badRaw.stderr).toContain('NAME=HOST:PORT');
  });

  it('runs alone from a config file, reporting unreachable backends as down', async () => {
    const data = await tempDir();
    const config = `${data}/gateway.json`;
    await writeFile(config, JSON.stringify({ port: 0, data, chat: 'tcp://127.0.0.1:1', exec: 'tcp://127.0.0.1:1', files: 'tcp://127.0.0.1:1', time: 'udp://127.0.0.1:1', raw: { vnc: '127.0.0.1:5900' } }));
    const proc = startCli(['gateway', '--config', config], { env: { SOCKBRIDGE_ADMIN_PASSWORD: 'gateway-admin-pw' } });
    const [, url] = await proc.waitFor(/sockbridge: open (http:\/\/127\.0\.0\.1:\d+\/)/);
    let health: { services: Record<string, { status: string; reason?: string }> } | undefined;
    for (let i = 0; i < 50; i++) {
      health = (await (await fetch(`${url}api/health`)).json()) as typeof health;
      if (health!.services['files']!.reason === 'ECONNREFUSED') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(health!.services['files']).toMatchObject({ status: 'down', reason: 'ECONNREFUSED' });
    expect(health!.services['chat']!.status).toBe('down');
    expect(await proc.stop()).toBe(0);
  });

  it('refuses a secret file named in the config that it cannot read (a typo), with exit 2', async () => {
    const data = await tempDir();
    const config = `${data}/gateway.json`;
    await writeFile(config, JSON.stringify({ port: 0, data, execSecretFile: `${data}/no-such.secret` }));
    const { code, stderr } = await runCli(['gateway', '--config', config], { env: { SOCKBRIDGE_ADMIN_PASSWORD: 'gateway-admin-pw' } });
    expect(code).toBe(2);
    expect(stderr).toContain(`cannot read secret file ${data}/no-such.secret: no such file`);
  });
});
