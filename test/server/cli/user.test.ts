import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UserStore } from '../../../server/accounts/user-store.js';
import { runCli } from '../../helpers/cli.js';
import { removeTempDirs, tempDir } from '../../helpers/tmp.js';

afterEach(removeTempDirs);

describe('sockbridge user', () => {
  it('adds an account from --password-stdin that can then log in, changes and removes it', async () => {
    const data = await tempDir();
    const add = await runCli(['user', 'add', 'carol', '--role', 'admin', '--password-stdin', '--data', data], { input: 'carol-secret-1\n' });
    expect(add.code).toBe(0);
    expect(add.stdout + add.stderr).not.toContain('carol-secret-1');
    const store = new UserStore(join(data, 'users.sqlite'));
    try {
      expect(await store.verify('carol', 'carol-secret-1')).toEqual({ username: 'carol', role: 'admin' });
      expect((await stat(join(data, 'users.sqlite'))).mode & 0o777).toBe(0o600);

      const again = await runCli(['user', 'add', 'carol', '--password-stdin', '--data', data], { input: 'another-pass\n' });
      expect(again.code).toBe(1);

      const passwd = await runCli(['user', 'passwd', 'carol', '--password-stdin', '--data', data], { input: 'carol-secret-2\n' });
      expect(passwd.code).toBe(0);
      expect(await store.verify('carol', 'carol-secret-1')).toBeNull();
      expect(await store.verify('carol', 'carol-secret-2')).not.toBeNull();

      const remove = await runCli(['user', 'remove', 'carol', '--data', data]);
      expect(remove.code).toBe(0);
      expect(store.get('carol')).toBeNull();
    } finally {
      store.close();
    }
  });

  it('refuses a short password (exit 1) and a bad role (a usage error, exit 2) with no account', async () => {
    const data = await tempDir();
    const short = await runCli(['user', 'add', 'dave', '--password-stdin', '--data', data], { input: 'short\n' });
    expect(short.code).toBe(1);
    const role = await runCli(['user', 'add', 'dave', '--role', 'root', '--password-stdin', '--data', data], { input: 'long-enough-pw\n' });
    expect(role.code).toBe(2);
    const list = await runCli(['user', 'list', '--data', data]);
    expect(list.stdout).toBe('');
  });

  it('checks the name and the role before asking for a password or creating DATA', async () => {
    const data = `${await tempDir()}/data`;
    const role = await runCli(['user', 'add', 'erin', '--role', 'root', '--data', data]);
    expect(role.code).toBe(2);
    expect(role.stderr).toContain('role must be admin or user');
    const missing = await runCli(['user', 'passwd', '--data', data]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing NAME');
    expect(existsSync(data)).toBe(false);
  });

  it('an invalid NAME is a usage error for add, remove, passwd and role: one line, exit 2, no DATA created', async () => {
    const data = `${await tempDir()}/data`;
    for (const action of ['add', 'remove', 'passwd', 'role']) {
      const r = await runCli(['user', action, 'bad name!', '--role', 'user', '--password-stdin', '--data', data], { input: 'long-enough-pw\n' });
      expect(r.code, action).toBe(2);
      expect(r.stderr, action).toBe('sockbridge: invalid user: a username is 1-32 letters, digits, ".", "_" or "-", starting with a letter or digit\n');
    }
    expect(existsSync(data)).toBe(false);
  });

  it('names an unknown action, and says when none was given: exit 2, no DATA created', async () => {
    const data = `${await tempDir()}/data`;
    const unknown = await runCli(['user', 'frob', 'carol', '--data', data]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^sockbridge: unknown action "frob"\nusage: sockbridge user /);
    const none = await runCli(['user', '--data', data]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^sockbridge: which action\?\nusage: sockbridge user /);
    expect(existsSync(data)).toBe(false);
  });

  it('list, remove, passwd and role on a --data with no accounts database say so, exit 1, and create nothing', async () => {
    const data = `${await tempDir()}/typo`;
    for (const argv of [['list'], ['remove', 'admin'], ['passwd', 'admin', '--password-stdin'], ['role', 'admin', '--role', 'user']]) {
      const r = await runCli(['user', ...argv, '--data', data], { input: 'long-enough-pw\n' });
      expect(r.code, argv[0]).toBe(1);
      expect(r.stdout, argv[0]).toBe('');
      expect(r.stderr, argv[0]).toBe(`sockbridge: no accounts database at ${data}/users.sqlite; check --data (sockbridge start or sockbridge user add creates it)\n`);
    }
    expect(existsSync(data)).toBe(false);
    // add still creates it
    const add = await runCli(['user', 'add', 'frank', '--password-stdin', '--data', data], { input: 'long-enough-pw\n' });
    expect(add.code).toBe(0);
    expect((await runCli(['user', 'list', '--data', data])).stdout).toBe('frank\tuser\n');
  });

  it('without --password-stdin and without a terminal, says how to pass the password', async () => {
    const data = await tempDir();
    const res = await runCli(['user', 'add', 'erin', '--data', data]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--password-stdin');
  });
});

describe('sockbridge user on a terminal', () => {
  it('prompts twice without echoing the password', async () => {
    const { spawn } = await import('node-pty');
    const { SOCKBRIDGE_BIN } = await import('../../helpers/cli.js');
    const data = await tempDir();
    const term = spawn(process.execPath, [SOCKBRIDGE_BIN, 'user', 'add', 'hank', '--data', data], { cols: 80, rows: 24, env: process.env as Record<string, string> });
    let screen = '';
    const exited = new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
    const waitFor = (text: string) =>
      new Promise<void>((resolve) => {
        const check = () => screen.includes(text) && resolve();
        term.onData((d) => {
          screen += d;
          check();
        });
        check();
      });
    await waitFor('password: ');
    term.write('Hank-Pa55word!\r');
    await waitFor('again: ');
    term.write('Hank-Pa55word!\r');
    expect(await exited).toBe(0);
    expect(screen).toContain('added user hank');
    expect(screen).not.toContain('Hank-Pa55word!');
    const store = new UserStore(join(data, 'users.sqlite'));
    try {
      expect(await store.verify('hank', 'Hank-Pa55word!')).toEqual({ username: 'hank', role: 'user' });
    } finally {
      store.close();
    }
  });
});
