// Chat history in SQLite (better-sqlite3, synchronous). append() commits before it returns, and
// the service delivers a message (the sender's ack included) only after append() returned: so an
// acknowledged message is on disk, and restarting the service loses none of them.
//
// WAL journal with synchronous=NORMAL: a commit survives a crash or kill of the process (the WAL
// is in the OS page cache); only a power loss may roll back the last commits (sqlite.org/wal.html).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ChatMessage, DirectMessage } from '../../protocol/chat-messages.js';
import { sbError } from '../../protocol/errors.js';

export const CHAT_DB_FILE = 'chat.sqlite';

interface Row {
  id: number;
  room: string | null;
  sender: string;
  recipient: string | null;
  text: string;
  ts: number;
}

/**
 * The last `@limit` direct messages to or by `@nick`, oldest first. Each half walks its own index
 * backwards from the newest row (messages_by_recipient, direct_messages_by_sender) and stops after
 * `@limit` rows, so the cost is bounded by the limit, not by how many DMs the nick ever had (an
 * `recipient = ? OR sender = ?` would scan every direct message). A DM to oneself is counted once:
 * the second half skips rows the first one has.
 */
export const RECENT_DIRECT_SQL = `
  SELECT * FROM (
    SELECT * FROM (SELECT * FROM messages WHERE recipient = @nick ORDER BY id DESC LIMIT @limit)
    UNION ALL
    SELECT * FROM (SELECT * FROM messages WHERE sender = @nick AND recipient IS NOT NULL AND recipient <> @nick
                   ORDER BY id DESC LIMIT @limit)
    ORDER BY id DESC LIMIT @limit
  ) ORDER BY id`;

export class ChatHistory {
  private readonly db: Database.Database;
  private readonly insertStmt: Database.Statement<[string | null, string, string | null, string, number]>;
  private readonly recentStmt: Database.Statement<[string, number], Row>;
  private readonly recentDirectStmt: Database.Statement<[{ nick: string; limit: number }], Row>;

  /** Opens (creating if needed) `dataDir/chat.sqlite`. */
  constructor(dataDir: string) {
    const path = join(dataDir, CHAT_DB_FILE);
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      this.db = new Database(path);
    } catch (err) {
      throw sbError('SB_ERR_CONFIG_INVALID', `cannot open the chat history ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check --data`);
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS messages (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        room      TEXT,             -- NULL for a direct message
        sender    TEXT NOT NULL,
        recipient TEXT,             -- NULL for a room message
        text      TEXT NOT NULL,
        ts        INTEGER NOT NULL  -- ms since the Unix epoch
      );
      CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id) WHERE room IS NOT NULL;
      CREATE INDEX IF NOT EXISTS messages_by_recipient ON messages (recipient, id) WHERE recipient IS NOT NULL;
      CREATE INDEX IF NOT EXISTS direct_messages_by_sender ON messages (sender, id) WHERE recipient IS NOT NULL;
    `);
    this.insertStmt = this.db.prepare('INSERT INTO messages (room, sender, recipient, text, ts) VALUES (?, ?, ?, ?, ?)');
    this.recentStmt = this.db.prepare<[string, number], Row>(
      'SELECT * FROM (SELECT * FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?) ORDER BY id',
    );
    this.recentDirectStmt = this.db.prepare<[{ nick: string; limit: number }], Row>(RECENT_DIRECT_SQL);
  }

  /** Stores a room message (committed when this returns) and returns it with its id and timestamp. */
  append(room: string, from: string, text: string, ts = Date.now()): ChatMessage {
    const id = Number(this.insertStmt.run(room, from, null, text, ts).lastInsertRowid);
    return { id, room, from, text, ts };
  }

  /** Stores a direct message (committed when this returns). */
  appendDirect(from: string, to: string, text: string, ts = Date.now()): DirectMessage {
    const id = Number(this.insertStmt.run(null, from, to, text, ts).lastInsertRowid);
    return { id, from, to, text, ts };
  }

  /** The last `limit` messages of `room`, oldest first. */
  recent(room: string, limit: number): ChatMessage[] {
    return this.recentStmt.all(room, limit).map((r) => ({ id: r.id, room: r.room!, from: r.sender, text: r.text, ts: r.ts }));
  }

  /** The last `limit` direct messages sent to or by `nick`, oldest first. */
  recentDirect(nick: string, limit: number): DirectMessage[] {
    if (limit <= 0) return [];
    return this.recentDirectStmt.all({ nick, limit }).map((r) => ({ id: r.id, from: r.sender, to: r.recipient!, text: r.text, ts: r.ts }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
