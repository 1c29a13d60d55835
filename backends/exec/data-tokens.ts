// One-time tokens that bind a data connection to the `stdout: 'connection'` run that issued them,
// as FTP binds its data connection to the control connection's transfer (RFC 959 §3.2), but with
// an unguessable token instead of "whoever connects to the port": 128 random bits (RFC 4086 §3),
// one use, a bounded wait. Shared by all sessions of one service (the data connection is another
// session than the run's).

import { randomBytes } from 'node:crypto';
import type net from 'node:net';

/** What the issuing run does with the connection, or when none came in time. */
export interface DataClaim {
  attach(socket: net.Socket): void;
  expire(): void;
}

export const DATA_TOKEN_BYTES = 16;

export class DataTokens {
  private readonly pending = new Map<string, { claim: DataClaim; timer: NodeJS.Timeout }>();

  constructor(private readonly waitMs: number) {}

  /** A fresh token for `claim`; after `waitMs` unused it is revoked and `claim.expire()` runs. */
  issue(claim: DataClaim): string {
    const token = randomBytes(DATA_TOKEN_BYTES).toString('base64url');
    const timer = setTimeout(() => {
      if (this.pending.delete(token)) claim.expire();
    }, this.waitMs);
    this.pending.set(token, { claim, timer });
    return token;
  }

  /**
   * Takes the token (it can never be used again) and returns its run, or undefined for a token that
   * is unknown, used, revoked or expired. A Map lookup leaks no timing worth having: the key is
   * 128 random bits, not a secret compared byte by byte.
   */
  redeem(token: string): DataClaim | undefined {
    const entry = this.pending.get(token);
    if (!entry) return undefined;
    this.pending.delete(token);
    clearTimeout(entry.timer);
    return entry.claim;
  }

  /** The run went away (cancelled, its connection closed) before the data connection came. */
  revoke(token: string): void {
    this.redeem(token); // taken and dropped: the same as a use nobody acts on
  }
}
