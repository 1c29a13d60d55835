// Passwords and session cookies never reach the log: the gateway's pino output is captured during
// logins (right and wrong), a request carrying the cookie, and `sockbridge user add`.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { REDACT_PATHS } from '../../server/logger.js';
import { runCli } from '../helpers/cli.js';
import { removeTempDirs, tempDir } from '../helpers/tmp.js';
import { closeAll, testGateway } from '../server/app-fixture.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

describe('secrets in logs', () => {
  it('never logs a password or the session cookie', async () => {
    let log = '';
    const sink = new Writable({ write: (chunk, _enc, done) => ((log += chunk.toString()), done()) });
    const logger = pino({ level: 'trace', redact: REDACT_PATHS }, sink);
    const { app } = await testGateway({ logger });
    await app.users.add('frank', 'Frank-Pa55word!', 'user');
    const wrong = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'frank', password: 'Wrong-Pa55word!' } });
    expect(wrong.statusCode).toBe(401);
    const ok = await app.inject({ method: 'POST', url: '/api/login', payload: { username: 'frank', password: 'Frank-Pa55word!' } });
    const cookie = ok.cookies.find((c) => c.name === 'sb_session')!.value;
    await app.inject({ method: 'GET', url: '/api/me', cookies: { sb_session: cookie }, headers: { authorization: 'Basic c2VjcmV0' } });
    expect(log).toContain('login'); // the capture works
    expect(log).not.toContain('Frank-Pa55word!');
    expect(log).not.toContain('Wrong-Pa55word!');
    expect(log).not.toContain(cookie);
    expect(log).not.toContain('c2VjcmV0');
  });

  it('`sockbridge user add` prints no password', async () => {
    const data = await tempDir();
    const res = await runCli(['user', 'add', 'gina', '--password-stdin', '--data', data], { input: 'Gina-Pa55word!\n', env: { SOCKBRIDGE_LOG_LEVEL: 'trace' } });
    expect(res.code).toBe(0);
    expect(res.stdout + res.stderr).not.toContain('Gina-Pa55word!');
  });
});
