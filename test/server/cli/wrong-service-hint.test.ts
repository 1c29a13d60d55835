// A client command pointed at the wrong port: the error says what the bytes suggest (wrong-service-hint.ts),
// against the real chat service's two ports.
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, stopAllCli } from '../../helpers/cli.js';
import { removeTempDirs } from '../../helpers/tmp.js';
import { closeAll, startChat } from '../../backends/chat/chat-kit.js';
import { wrongServiceHint } from '../../../server/cli/wrong-service-hint.js';
import { sbError } from '../../../protocol/errors.js';

afterEach(async () => {
  await stopAllCli();
  await closeAll();
  await removeTempDirs();
});

describe('a client command at the chat line port', () => {
  it.each([
    ['chat', ['--nick', 'bob']],
    ['exec', ['--', 'true']],
  ])('%s: one line naming the implausible frame header and the likely cause, exit 1', async (command, extra) => {
    const { linePort } = await startChat();
    const { code, stderr } = await runCli([command, `127.0.0.1:${linePort}`, ...extra], { env: { SOCKBRIDGE_EXEC_SECRET: 'a-long-enough-exec-secret' } });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^sockbridge: [^\n]*; is HOST:PORT the right service\? this looks like a text\/line port\n$/);
  });

  it('ls: the files client calls it a malformed reply; the hint still asks about the port', async () => {
    const { linePort } = await startChat();
    const { code, stderr } = await runCli(['ls', `127.0.0.1:${linePort}`]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^sockbridge: the files service is unavailable: malformed reply \(SB_ERR_FRAME_[A-Z_]+\); is HOST:PORT the right service\?\n$/);
  });
});

describe('a client command at another sockbridge service', () => {
  it('ls at the chat port: the refusal of its command, and the hint', async () => {
    const { port } = await startChat();
    const { code, stderr } = await runCli(['ls', `127.0.0.1:${port}`]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^sockbridge: unknown cmd "list"; this service accepts: [^\n]*; is HOST:PORT the right service\?\n$/);
  });
});

describe('wrongServiceHint', () => {
  it('calls a header length made of printable bytes text, any other implausible one just a wrong service', () => {
    const text = Buffer.from('HTTP').readUInt32LE(0);
    expect(wrongServiceHint(sbError('SB_ERR_FRAME_HEADER_LENGTH', text, 4194304))).toBe('; is HOST:PORT the right service? this looks like a text/line port');
    expect(wrongServiceHint(sbError('SB_ERR_FRAME_HEADER_LENGTH', 0xfffffff0, 4194304))).toBe('; is HOST:PORT the right service?');
  });

  it('adds nothing to an error that says nothing about the peer', () => {
    expect(wrongServiceHint(sbError('SB_ERR_FILE_NOT_FOUND', 'a.txt'))).toBe('');
    expect(wrongServiceHint(sbError('SB_ERR_BACKEND_DOWN', 'files', 'connection closed'))).toBe('');
  });
});
