// Property tests over the browser → gateway message parsers (protocol/browser-messages.ts): random
// strings and bytes, JSON values of any shape, and valid messages mutated field by field. Whatever
// comes in, the parsers return a message or throw a SockbridgeError, never anything else, and what
// they return carries only the fields the contract names.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseChatClientMessage,
  parseExecClientMessage,
  parseTimeClientMessage,
  endsSocket,
} from '../../protocol/browser-messages.js';
import { isSockbridgeError } from '../../protocol/errors.js';
import { encodeExecData } from '../../protocol/exec-messages.js';
import { fcOptions } from '../helpers/fc.js';

/** Runs a parser; returns the result, or null after checking the failure is a typed error. */
function typedOnly<T>(parse: () => T): T | null {
  try {
    return parse();
  } catch (err) {
    if (!isSockbridgeError(err)) throw new Error(`untyped failure: ${String(err)}`);
    expect(typeof endsSocket(err)).toBe('boolean');
    return null;
  }
}

const parsers = {
  chat: (s: string) => parseChatClientMessage(s),
  exec: (s: string) => parseExecClientMessage(s),
  time: (s: string) => parseTimeClientMessage(s),
};

const validChat = [
  { cmd: 'join', room: 'lobby' },
  { cmd: 'leave', room: 'lobby' },
  { cmd: 'say', room: 'lobby', text: 'hi', ref: 'r1' },
  { cmd: 'dm', to: 'bob', text: 'psst' },
  { cmd: 'who', room: 'lobby' },
  { cmd: 'rooms' },
  { cmd: 'ping' },
];
const validExec = [
  { cmd: 'run', id: 'a', command: 'echo hi' },
  { cmd: 'run', id: 'b', argv: ['ls', '-l'], pty: true, cols: 80, rows: 24, timeoutMs: 1000 },
  { cmd: 'stdin', id: 'a', eof: true },
  { cmd: 'resize', id: 'a', cols: 100, rows: 30 },
  { cmd: 'cancel', id: 'a', signal: 'SIGINT' },
];
const validTime = [{ cmd: 'ping', t0: 1764000000000.25 }];

// Values a mutated field may take: the usual suspects of a JSON parser's edge.
const edgeValue = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1e308, -0, '', '..', '__proto__', 'hello', 'auth', '\u0000', 'x'.repeat(5000)),
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }),
);

describe('browser message parsers under random input', () => {
  for (const [name, parse] of Object.entries(parsers)) {
    it(`${name}: any string gives a message or a typed error`, () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (s) => {
          typedOnly(() => parse(s));
        }),
        fcOptions(),
      );
    });

    it(`${name}: any JSON value gives a message or a typed error`, () => {
      fc.assert(
        fc.property(fc.jsonValue({ maxDepth: 3 }), (v) => {
          typedOnly(() => parse(JSON.stringify(v)));
        }),
        fcOptions(),
      );
    });
  }

  const mutated = (valid: Record<string, unknown>[]) =>
    fc.tuple(fc.constantFrom(...valid), fc.constantFrom('cmd', 'room', 'text', 'to', 'ref', 'id', 'command', 'argv', 'cols', 'rows', 'signal', 'eof', 't0', '__proto__', 'constructor', 'extra'), edgeValue);

  it('mutated valid messages: typed errors only, and no field beyond the contract survives', () => {
    const cases: [string, Record<string, unknown>[], (s: string) => unknown][] = [
      ['chat', validChat, parsers.chat],
      ['exec', validExec, parsers.exec],
      ['time', validTime, parsers.time],
    ];
    for (const [, valid, parse] of cases) {
      fc.assert(
        fc.property(mutated(valid), ([base, key, value]) => {
          // Built as text so "__proto__" becomes a real own key, as it would from a hostile browser.
          const text = JSON.stringify(base).replace(/}$/, `${Object.keys(base).length ? ',' : ''}${JSON.stringify(key)}:${JSON.stringify(value)}}`);
          const out = typedOnly(() => parse(text)) as Record<string, unknown> | { kind: string; request: Record<string, unknown> } | null;
          if (out === null) return;
          const message = ('kind' in out ? out.request : out) as Record<string, unknown>;
          expect(Object.keys(message)).not.toContain('extra');
          expect(Object.keys(message)).not.toContain('__proto__');
          expect(Object.getPrototypeOf(message)).toBe(Object.prototype);
        }),
        fcOptions(),
      );
    }
  });

  it('exec binary: any bytes give stdin or a typed error; valid stdin round-trips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const out = typedOnly(() => parseExecClientMessage(bytes));
        if (out) expect(out.kind).toBe('stdin');
      }),
      fcOptions(),
    );
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 16 }), fc.uint8Array({ maxLength: 100 }), (id, payload) => {
        const out = parseExecClientMessage(encodeExecData('stdin', id, payload));
        expect(out).toEqual({ kind: 'stdin', id, payload: expect.anything() });
        if (out.kind === 'stdin') expect([...out.payload]).toEqual([...payload]);
      }),
      fcOptions(),
    );
  });

  it('the fixed cases refuse what they must, with the codes routes rely on', () => {
    const code = (f: () => unknown) => {
      try {
        f();
        return 'accepted';
      } catch (err) {
        return isSockbridgeError(err) ? err.code : 'untyped';
      }
    };
    expect(code(() => parseChatClientMessage('{"cmd":"hello","nick":"admin"}'))).toBe('SB_ERR_WS_CMD_RESERVED');
    expect(code(() => parseExecClientMessage('{"cmd":"auth","secret":"x"}'))).toBe('SB_ERR_WS_CMD_RESERVED');
    expect(code(() => parseChatClientMessage('{"cmd":"nuke"}'))).toBe('SB_ERR_WS_CMD_UNKNOWN');
    expect(code(() => parseChatClientMessage('{"cmd":"join","room":"x","__proto__":{"admin":true}}'))).toBe('SB_ERR_WS_FORBIDDEN_KEY');
    expect(code(() => parseChatClientMessage('not json'))).toBe('SB_ERR_WS_NOT_JSON');
    expect(code(() => parseChatClientMessage('[]'))).toBe('SB_ERR_WS_NOT_JSON');
    expect(code(() => parseChatClientMessage('{"cmd":"join","room":"../etc"}'))).toBe('SB_ERR_CHAT_ROOM_INVALID');
    expect(code(() => parseChatClientMessage(JSON.stringify({ cmd: 'say', room: 'a', text: 'é'.repeat(2049) })))).toBe('SB_ERR_MESSAGE_INVALID');
    expect(code(() => parseExecClientMessage('{"cmd":"run","id":"a","command":"x","argv":["x"]}'))).toBe('SB_ERR_MESSAGE_INVALID');
    expect(code(() => parseExecClientMessage(encodeExecData('stdout', 'a', new Uint8Array(1))))).toBe('SB_ERR_WS_BINARY_INVALID');
    expect(code(() => parseTimeClientMessage('{"cmd":"ping","t0":"now"}'))).toBe('SB_ERR_MESSAGE_INVALID');
    expect(parseChatClientMessage('{"cmd":"say","room":"lobby","text":"hi","nick":"root"}')).toEqual({ cmd: 'say', room: 'lobby', text: 'hi' });
  });
});
