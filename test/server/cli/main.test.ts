// What a user sees first when a port is taken: one line that says what to do, exit 1, no stack trace.
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await removeTempDirs();
});

describe('sockbridge: a port already in use', () => {
  it('says so in one line naming the address, and exits 1', async () => {
    const holder = net.createServer();
    servers.push(holder);
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const { port } = holder.address() as AddressInfo;
    const { code, stderr } = await runCli(['serve', 'files', '--port', String(port), '--root', await tempDir()]);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain(`127.0.0.1:${port} is already in use`);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('sockbridge serve: a stray argument', () => {
  it.each([['files'], ['chat'], ['exec'], ['time']])('serve %s rejects it with exit 2 instead of ignoring it', async (service) => {
    const { code, stderr } = await runCli(['serve', service, '/srv/stray']);
    expect(code).toBe(2);
    expect(stderr).toContain('unexpected argument "/srv/stray"');
  });
});
