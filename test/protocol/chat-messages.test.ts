import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseChatEvent, parseChatRequest, validateNick, validateRoom } from '../../protocol/chat-messages.js';
import { encodeFrame } from '../../protocol/frame-codec.js';
import { hexdump } from '../helpers/fc.js';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('parseChatRequest', () => {
  it('returns a clean copy holding only the known fields', () => {
    expect(parseChatRequest({ cmd: 'say', room: 'lobby', text: 'hi', ref: 'r', extra: 1 })).toEqual({ cmd: 'say', room: 'lobby', text: 'hi', ref: 'r' });
    expect(parseChatRequest({ cmd: 'hello', nick: 'a' })).toEqual({ cmd: 'hello', nick: 'a' });
    expect(parseChatRequest({ cmd: 'dm', to: 'b', text: 't' })).toEqual({ cmd: 'dm', to: 'b', text: 't' });
    expect(parseChatRequest({ cmd: 'ping', junk: true })).toEqual({ cmd: 'ping' });
  });

  it('takes a ref of 1-64 printable ASCII characters (a UUID, hex, base64url)', () => {
    for (const ref of ['r', '0f6c7a4e-5b0e-4c61-9d43-2f1e0a9b8c7d', 'r0123456789abcdef01234567', 'A-_~!'.padEnd(64, 'x')]) {
      expect(parseChatRequest({ cmd: 'say', room: 'lobby', text: 'hi', ref })).toEqual({ cmd: 'say', room: 'lobby', text: 'hi', ref });
    }
  });

  it.each([
    [null],
    [[1]],
    ['say'],
    [{ cmd: 'shout' }],
    [{ cmd: 'say', room: 'lobby' }],
    [{ cmd: 'say', room: 'lobby', text: 5 }],
    [{ cmd: 'dm', to: 1, text: 'x' }],
    [{ cmd: 'hello' }],
    [{ cmd: 'hello', nick: 'a', gatewayToken: 5 }],
    [{ cmd: 'say', room: 'lobby', text: 'x', ref: 'r'.repeat(65) }],
    [{ cmd: 'say', room: 'lobby', text: 'x', ref: '' }],
    [{ cmd: 'say', room: 'lobby', text: 'x', ref: 'a b' }],
    [{ cmd: 'dm', to: 'b', text: 'x', ref: 'r\u001b[2J' }],
    [{ cmd: 'dm', to: 'b', text: 'x', ref: 'ré' }],
    [{ cmd: 'join' }],
  ])('refuses %j with SB_ERR_MESSAGE_INVALID', (value) => {
    expect(codeOf(() => parseChatRequest(value))).toBe('SB_ERR_MESSAGE_INVALID');
  });
});

describe('validateNick / validateRoom', () => {
  it('accepts names in the patterns and refuses the rest with their codes', () => {
    expect(validateNick('alice_1.x-y')).toBe('alice_1.x-y');
    for (const bad of ['', ' a', '.a', 'a'.repeat(33), 'a/b', 'é']) expect(codeOf(() => validateNick(bad))).toBe('SB_ERR_CHAT_NICK_INVALID');
    expect(validateRoom('dev-2')).toBe('dev-2');
    for (const bad of ['', 'Dev', '../x', 'a'.repeat(65), '#x']) expect(codeOf(() => validateRoom(bad))).toBe('SB_ERR_CHAT_ROOM_INVALID');
  });
});

describe('parseChatEvent: account', () => {
  const message = { cmd: 'message', id: 1, room: 'lobby', from: 'admin', text: 'hi', ts: 1 };
  const direct = { cmd: 'direct', id: 2, from: 'admin', to: 'bob', text: 'psst', ts: 2 };

  it('keeps a boolean account on messages, direct messages and their histories', () => {
    expect(parseChatEvent({ ...message, account: true })).toMatchObject({ account: true });
    expect(parseChatEvent({ ...direct, account: false })).toMatchObject({ account: false });
    const joined = parseChatEvent({ cmd: 'joined', room: 'lobby', members: [], history: [{ ...message, account: true }] });
    expect(joined).toMatchObject({ history: [{ account: true }] });
  });

  it('reads an absent account (a service older than the flag) as false: such a sender is never taken for an account', () => {
    expect(parseChatEvent({ ...message })).toMatchObject({ account: false });
    expect(parseChatEvent({ ...direct })).toMatchObject({ account: false });
    const { cmd: _c, ...historyItem } = message;
    expect(parseChatEvent({ cmd: 'joined', room: 'lobby', members: [], history: [historyItem] })).toMatchObject({ history: [{ account: false }] });
    const { cmd: _d, ...directItem } = direct;
    expect(parseChatEvent({ cmd: 'directs', history: [directItem] })).toMatchObject({ history: [{ account: false }] });
  });

  it.each([['yes'], [1], [null]])('refuses an account that is not a boolean (%j) with SB_ERR_MESSAGE_INVALID', (account) => {
    expect(codeOf(() => parseChatEvent({ ...message, account }))).toBe('SB_ERR_MESSAGE_INVALID');
    expect(codeOf(() => parseChatEvent({ ...direct, account }))).toBe('SB_ERR_MESSAGE_INVALID');
    expect(codeOf(() => parseChatEvent({ cmd: 'directs', history: [{ ...direct, account }] }))).toBe('SB_ERR_MESSAGE_INVALID');
  });
});

describe('parseChatEvent: guests and presence account', () => {
  it('keeps guests that are members, and a boolean account on presence', () => {
    const members = { cmd: 'members', room: 'lobby', members: ['admin', 'root'], guests: ['root'] };
    expect(parseChatEvent({ ...members })).toEqual(members);
    const joined = { cmd: 'joined', room: 'lobby', members: ['admin'], guests: [], history: [] };
    expect(parseChatEvent({ ...joined })).toEqual(joined);
    expect(parseChatEvent({ cmd: 'presence', room: 'lobby', nick: 'root', event: 'join', account: true })).toMatchObject({ account: true });
  });

  it('reads absent guests as every member and an absent presence account as false (an older service vouches for nobody)', () => {
    expect(parseChatEvent({ cmd: 'members', room: 'lobby', members: ['admin', 'bob'] })).toMatchObject({ guests: ['admin', 'bob'] });
    expect(parseChatEvent({ cmd: 'joined', room: 'lobby', members: ['admin'], history: [] })).toMatchObject({ guests: ['admin'] });
    expect(parseChatEvent({ cmd: 'presence', room: 'lobby', nick: 'admin', event: 'join' })).toMatchObject({ account: false });
  });

  it.each([
    [{ cmd: 'members', room: 'lobby', members: ['admin'], guests: ['mallory'] }], // not a member
    [{ cmd: 'members', room: 'lobby', members: ['admin'], guests: 'admin' }],
    [{ cmd: 'joined', room: 'lobby', members: ['admin'], guests: [1], history: [] }],
    [{ cmd: 'presence', room: 'lobby', nick: 'admin', event: 'join', account: 'yes' }],
  ])('refuses %j with SB_ERR_MESSAGE_INVALID', (event) => {
    expect(codeOf(() => parseChatEvent(event))).toBe('SB_ERR_MESSAGE_INVALID');
  });
});

describe('docs/protocol.md', () => {
  it('shows the real bytes of the example say frame', () => {
    const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    const chat = doc.slice(doc.indexOf('## chat'));
    const frame = encodeFrame({ cmd: 'say', room: 'lobby', text: 'hi', ref: '1' });
    expect(parseChatRequest(JSON.parse(frame.subarray(4).toString()))).toEqual({ cmd: 'say', room: 'lobby', text: 'hi', ref: '1' });
    expect(chat).toContain(hexdump(frame));
  });
});
