// Session expiry is a timer per session (issue: an idle /ws/time outlived its session by 27 s and an
// idle /ws/chat kept receiving, because expired sessions were only swept every 30 s).
import { afterEach, describe, expect, it } from 'vitest';
import { SessionStore, type SessionEndReason } from '../../../server/accounts/session-store.js';

const stores: SessionStore[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
});

function store(ttlMs: number): { sessions: SessionStore; ended: { user: string; why: SessionEndReason; at: number }[] } {
  const sessions = new SessionStore({ ttlMs });
  stores.push(sessions);
  const ended: { user: string; why: SessionEndReason; at: number }[] = [];
  sessions.onEnd((session, why) => ended.push({ user: session.username, why, at: Date.now() }));
  return { sessions, ended };
}

const account = (username: string) => ({ username, role: 'user' as const, credentialsVersion: 1 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SessionStore expiry', () => {
  it('ends a session at its expiry without any request for it', async () => {
    const { sessions, ended } = store(300);
    const started = Date.now();
    const session = sessions.create(account('alice'));
    await sleep(150);
    expect(ended).toEqual([]);
    await sleep(450);
    expect(ended.map(({ user, why }) => ({ user, why }))).toEqual([{ user: 'alice', why: 'expired' }]);
    // on time: not at the next sweep of some interval
    expect(ended[0]!.at - started).toBeGreaterThanOrEqual(290);
    expect(ended[0]!.at - started).toBeLessThan(500);
    expect(sessions.get(session.id)).toBeNull();
    expect(sessions.size).toBe(0);
  });

  it('a session ended before its expiry is ended once, for its own reason', async () => {
    const { sessions, ended } = store(200);
    const a = sessions.create(account('alice'));
    const b = sessions.create(account('bob'));
    sessions.delete(a.id);
    sessions.revoke(b.id);
    await sleep(400);
    expect(ended.map(({ user, why }) => ({ user, why }))).toEqual([
      { user: 'alice', why: 'logout' },
      { user: 'bob', why: 'revoked' },
    ]);
  });

  it('a TTL beyond setTimeout range (24.8 days) is waited for in steps, not retried every millisecond', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      const { sessions, ended } = store(2 ** 31 + 60_000);
      const session = sessions.create(account('alice'));
      await sleep(100);
      expect(ended).toEqual([]);
      expect(sessions.get(session.id)).not.toBeNull();
      // Node clamps a longer delay to 1 ms and says so
      expect(warnings).not.toContain('TimeoutOverflowWarning');
    } finally {
      process.off('warning', onWarning);
    }
  });
});
