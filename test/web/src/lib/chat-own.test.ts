// isOwn (web/src/lib/chat-own.ts): which messages the page counts as the viewer's own (styling,
// unread counts, DM conversations). A guest's message under the viewer's name never is; one stored
// before messages were marked (no `account`) is counted by its name, as it was before the flag.
import { describe, expect, it } from 'vitest';
import { isOwn } from '../../../../web/src/lib/chat-own.js';

describe('isOwn', () => {
  it('is true for an account message under the viewer’s name only', () => {
    expect(isOwn({ from: 'bob', account: true }, 'bob')).toBe(true);
    expect(isOwn({ from: 'alice', account: true }, 'bob')).toBe(false);
    expect(isOwn({ from: 'bob', account: true }, null)).toBe(false);
  });

  it('is false for a guest using the viewer’s name', () => {
    expect(isOwn({ from: 'bob', account: false }, 'bob')).toBe(false);
  });

  it('counts a message stored before the account flag (none) by its name', () => {
    expect(isOwn({ from: 'bob' }, 'bob')).toBe(true);
    expect(isOwn({ from: 'alice' }, 'bob')).toBe(false);
  });
});
