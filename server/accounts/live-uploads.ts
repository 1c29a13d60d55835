// Uploads in flight, per session. An upload's put header names its actor (the account, and whether it
// acts as an admin) before the first body byte, and the files service checks that actor when it
// publishes, however long the body takes: so when a session ends (logout, expiry, account removed,
// password changed) or its role drops below the one an upload started with, the gateway aborts the
// upload itself. The abort fails the upload's source, which makes the files client drop its
// connection mid-frame; the files service then discards the non-resumable upload, and nothing is
// published under the file's name. LiveSockets (plugins/auth.ts) does the same for WebSockets.

import { sbError, type SockbridgeError } from '../../protocol/errors.js';
import type { Role } from '../../protocol/api.js';
import type { Session, SessionStore } from './session-store.js';
import { roleAllows } from './user-store.js';


interface Upload {
  /** the role its actor was sent with */
  role: Role;
  abort(err: SockbridgeError): void;
}

export class LiveUploads {
  private readonly bySession = new Map<string, Set<Upload>>();

  constructor(private readonly sessions: SessionStore) {
    // 401 whatever the reason: the browser learns it must log in again, as for any request
    sessions.onEnd((session) => this.abortSession(session.id, sbError('SB_ERR_AUTH_REQUIRED')));
  }

  /**
   * Registers an upload about to send `session`'s actor; `abort` is called at most once, with the
   * error the request should answer. Returns the function that unregisters it (call it when the
   * upload settles). Throws SB_ERR_AUTH_REQUIRED when the session has already ended.
   */
  add(session: Session, abort: (err: SockbridgeError) => void): () => void {
    if (this.sessions.get(session.id) !== session) throw sbError('SB_ERR_AUTH_REQUIRED');
    let set = this.bySession.get(session.id);
    if (!set) this.bySession.set(session.id, (set = new Set()));
    const uploads = set;
    const upload: Upload = { role: session.role, abort };
    uploads.add(upload);
    return () => {
      uploads.delete(upload);
      if (uploads.size === 0 && this.bySession.get(session.id) === uploads) this.bySession.delete(session.id);
    };
  }

  /** How many uploads of this session are in flight. */
  count(sessionId: string): number {
    return this.bySession.get(sessionId)?.size ?? 0;
  }

  /** The session's role is now `role`: its uploads started with a higher one are aborted (403). */
  applyRole(sessionId: string, role: Role): void {
    for (const upload of [...(this.bySession.get(sessionId) ?? [])]) {
      if (!roleAllows(role, upload.role)) {
        this.bySession.get(sessionId)?.delete(upload);
        upload.abort(sbError('SB_ERR_FORBIDDEN', `the account lost the ${upload.role} role during the upload`));
      }
    }
  }

  private abortSession(sessionId: string, err: SockbridgeError): void {
    const set = this.bySession.get(sessionId);
    if (!set) return;
    this.bySession.delete(sessionId);
    for (const upload of set) upload.abort(err);
  }
}
