import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeExecData, encodeExecData, EXEC_REQUEST_COMMANDS, parseExecRequest } from '../../protocol/exec-messages.js';
import { isSockbridgeError } from '../../protocol/errors.js';
import { fcOptions } from '../helpers/fc.js';

describe('binary exec messages (/ws/exec)', () => {
  it('encodes a fixture byte by byte', () => {
    const bytes = encodeExecData('stderr', 'j1', new TextEncoder().encode('hi'));
    expect([...bytes]).toEqual([
      3, // stream: stderr
      2, // id length
      0x6a, 0x31, // "j1"
      0x68, 0x69, // payload "hi"
    ]);
    expect(decodeExecData(bytes)).toEqual({ stream: 'stderr', id: 'j1', payload: new TextEncoder().encode('hi') });
  });

  it('round-trips any stream, id and payload', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('stdin' as const, 'stdout' as const, 'stderr' as const),
        fc.string({ minLength: 1, maxLength: 16 }),
        fc.uint8Array({ maxLength: 256 }),
        (stream, id, payload) => {
          const decoded = decodeExecData(encodeExecData(stream, id, payload));
          expect(decoded).toEqual({ stream, id, payload });
        },
      ),
      fcOptions(),
    );
  });

  it('refuses ids outside 1..64 bytes when encoding', () => {
    expect(() => encodeExecData('stdout', '', new Uint8Array())).toThrow(RangeError);
    expect(() => encodeExecData('stdout', 'x'.repeat(65), new Uint8Array())).toThrow(RangeError);
  });

  it.each([
    ['too short', [2, 1]],
    ['unknown stream', [9, 1, 0x61, 0]],
    ['id length 0', [2, 0, 0x61]],
    ['id length over 64', [2, 65, ...new Array(65).fill(0x61)]],
    ['id longer than the message', [2, 5, 0x61, 0x62]],
    ['id not UTF-8', [2, 1, 0xff, 0]],
  ])('decodes %s as null', (_name, bytes) => {
    expect(decodeExecData(Uint8Array.from(bytes))).toBeNull();
  });

  it('never throws on random input', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => void decodeExecData(bytes)), fcOptions());
  });
});

describe('parseExecRequest', () => {
  it('keeps only the known fields of a valid run', () => {
    expect(parseExecRequest({ cmd: 'run', id: 'a', argv: ['ls', '-l'], pty: true, cols: 80, rows: 24, timeoutMs: 5, extra: 1 })).toEqual({
      cmd: 'run', id: 'a', argv: ['ls', '-l'], pty: true, cols: 80, rows: 24, timeoutMs: 5,
    });
    expect(parseExecRequest({ cmd: 'run', id: 'b', command: 'echo hi', pty: false })).toEqual({ cmd: 'run', id: 'b', command: 'echo hi' });
  });

  it('accepts the other requests', () => {
    expect(parseExecRequest({ cmd: 'auth', secret: 's' })).toEqual({ cmd: 'auth', secret: 's' });
    expect(parseExecRequest({ cmd: 'stdin', id: 'a', eof: true })).toEqual({ cmd: 'stdin', id: 'a', eof: true });
    expect(parseExecRequest({ cmd: 'stdin', id: 'a', eof: false })).toEqual({ cmd: 'stdin', id: 'a' });
    expect(parseExecRequest({ cmd: 'resize', id: 'a', cols: 1, rows: 10_000 })).toEqual({ cmd: 'resize', id: 'a', cols: 1, rows: 10_000 });
    expect(parseExecRequest({ cmd: 'cancel', id: 'a', signal: 'SIGINT' })).toEqual({ cmd: 'cancel', id: 'a', signal: 'SIGINT' });
  });

  it.each([
    ['auth without secret', { cmd: 'auth' }],
    ['auth with a number', { cmd: 'auth', secret: 1 }],
    ['run without id', { cmd: 'run', argv: ['ls'] }],
    ['run with an empty id', { cmd: 'run', id: '', argv: ['ls'] }],
    ['run with a 65-byte id', { cmd: 'run', id: 'é'.repeat(32) + 'x', argv: ['ls'] }],
    ['run with neither command nor argv', { cmd: 'run', id: 'a' }],
    ['run with both', { cmd: 'run', id: 'a', argv: ['ls'], command: 'ls' }],
    ['run with an empty argv', { cmd: 'run', id: 'a', argv: [] }],
    ['run with an empty program', { cmd: 'run', id: 'a', argv: [''] }],
    ['run with a non-string argument', { cmd: 'run', id: 'a', argv: ['ls', 1] }],
    ['run with a NUL in command', { cmd: 'run', id: 'a', command: 'ls\0' }],
    ['run with pty "yes"', { cmd: 'run', id: 'a', argv: ['ls'], pty: 'yes' }],
    ['run with cols 0', { cmd: 'run', id: 'a', argv: ['ls'], cols: 0 }],
    ['run with fractional rows', { cmd: 'run', id: 'a', argv: ['ls'], rows: 2.5 }],
    ['run with a negative timeout', { cmd: 'run', id: 'a', argv: ['ls'], timeoutMs: -1 }],
    ['stdin with eof "true"', { cmd: 'stdin', id: 'a', eof: 'true' }],
    ['resize without rows', { cmd: 'resize', id: 'a', cols: 80 }],
    ['cancel with SIGSTOP', { cmd: 'cancel', id: 'a', signal: 'SIGSTOP' }],
    ['an unknown cmd', { cmd: 'spawn' }],
  ])('refuses %s with SB_ERR_BAD_REQUEST', (_name, header) => {
    let error: unknown;
    try {
      parseExecRequest(header as { cmd: string });
    } catch (err) {
      error = err;
    }
    expect(isSockbridgeError(error, 'SB_ERR_BAD_REQUEST')).toBe(true);
  });

  it('reads only own properties (an inherited field is not a field)', () => {
    const header = Object.create({ argv: ['sh'] }) as { cmd: string; id: string };
    header.cmd = 'run';
    header.id = 'a';
    expect(() => parseExecRequest(header)).toThrow(expect.objectContaining({ code: 'SB_ERR_BAD_REQUEST' }));
  });

  it('throws nothing but SB_ERR_BAD_REQUEST on random headers', () => {
    fc.assert(
      fc.property(fc.constantFrom(...EXEC_REQUEST_COMMANDS), fc.dictionary(fc.constantFrom('id', 'argv', 'command', 'cols', 'rows', 'eof', 'signal', 'secret', 'pty', 'timeoutMs'), fc.jsonValue()), (cmd, rest) => {
        try {
          parseExecRequest({ ...rest, cmd });
        } catch (err) {
          expect(isSockbridgeError(err, 'SB_ERR_BAD_REQUEST')).toBe(true);
        }
      }),
      fcOptions(),
    );
  });
});
