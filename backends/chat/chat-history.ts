// Chat history in SQLite (better-sqlite3, synchronous). append() commits before it returns, and
// the service delivers a message (the sender's ack included) only after append() returned: so an
// acknowledged message is on disk, and restarting the service loses none of them.
//
// WAL journal with synchronous=NORMAL: a commit survives a crash or kill of the process (the WAL
// is in the OS page cache); only a power loss may roll back the last commits (sqlite.org/wal.html).
//
// Idempotent send: a message stored with its client `ref` is remembered in sent_refs, in the same
// transaction as the message itself, so a retry after a lost ack (even across a restart of the
// service) finds it and is answered with the stored copy instead of being posted twice. Refs are
// kept for `refWindowMs` only: rows older than that are ignored by sentWithRef and deleted by a later
// append that carries a ref, so the table holds at most one window's worth of messages (the rate
// limit bounds how many that is).
//
// Accounts: each message records whether its sender was an account (a connection that presented
// the gateway token) or a direct client using a free nickname, so readers can tell an impostor from
// the account even in history. A nickname an account used is reserved in reserved_nicks (no case
// distinction, as account names): from then on only a token-bearing connection may hold it
// (ChatHub.connect). Databases from before this get the column on open, NULL in every old row:
// nobody knows who sent those (an account or a guest), so their events carry no `account` at all,
// and a nick's direct-message history still holds what it sent then, as it did before the flag.

import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ChatMessage, DirectMessage } from '../../protocol/chat-messages.js';
import { sbError } from '../../protocol/errors.js';

export const CHAT_DB_FILE = 'chat.sqlite';
/** How long a message's ref is remembered (see above): a client retries within a disconnect or two, or a person clicks Resend. */
export const DEFAULT_REF_WINDOW_MS = 60 * 60_000;

/** A message found by its sender's ref: a room message or a direct one. */
type SentMessage = { kind: 'room'; message: ChatMessage } | { kind: 'direct'; message: DirectMessage };

interface Row {
  id: number;
  room: string | null;
  sender: string;
  recipient: string | null;
  text: string;
  ts: number;
  /** NULL: stored before the flag existed (unknown) */
  account: number | null;
}

/** `account` as the wire carries it: only when known (see ChatMessage.account). */
const accountOf = (r: Row): { account?: boolean } => (r.account === null ? {} : { account: r.account === 1 });
const roomMessage = (r: Row): ChatMessage => ({ id: r.id, room: r.room!, from: r.sender, text: r.text, ts: r.ts, ...accountOf(r) });
const directMessage = (r: Row): DirectMessage => ({ id: r.id, from: r.sender, to: r.recipient!, text: r.text, ts: r.ts, ...accountOf(r) });

type InsertRow = [room: string | null, sender: string, recipient: string | null, text: string, ts: number, account: number];

/**
 * The last `@limit` direct messages to or by `@nick`, oldest first; "by" means sent by the account
 * `@nick`, not by a direct client that used the name before it was reserved (that is not theirs),
 * or sent before the account flag existed (account NULL: the nick's own, as they always were shown
 * to it, or an upgrade would take an account's earlier DMs away). Each half walks its own index
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
                   AND (account = 1 OR account IS NULL) ORDER BY id DESC LIMIT @limit)
    ORDER BY id DESC LIMIT @limit
  ) ORDER BY id`;

/**
 * Opens the database readable by its owner only: it holds direct messages. The file is created 0600
 * before SQLite sees it (never world-readable, not even for a moment), and a file, -wal or -shm left
 * 0644 by an older version is tightened; SQLite creates -wal and -shm with the main file's mode.
 */
function openPrivate(path: string): Database.Database {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      chmodSync(file, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return new Database(path);
}

export class ChatHistory {
  private readonly db: Database.Database;
  private readonly insertStmt: Database.Statement<InsertRow>;
  private readonly recentStmt: Database.Statement<[string, number], Row>;
  private readonly recentDirectStmt: Database.Statement<[{ nick: string; limit: number }], Row>;
  private readonly insertRefStmt: Database.Statement<[string, string, number, number]>;
  private readonly sentStmt: Database.Statement<[string, string, number], Row>;
  private readonly pruneRefsStmt: Database.Statement<[number]>;
  private readonly insertWithRef: (row: InsertRow, ref: string) => number;
  private readonly reserveStmt: Database.Statement<[string, number]>;
  private readonly reservedStmt: Database.Statement<[string], { nick: string }>;
  private readonly refWindowMs: number;
  /** when expired refs were last deleted (ms since the epoch; -Infinity: not yet) */
  private lastPruneTs = Number.NEGATIVE_INFINITY;

  /** Opens (creating if needed) `dataDir/chat.sqlite`. */
  constructor(dataDir: string, { refWindowMs = DEFAULT_REF_WINDOW_MS }: { refWindowMs?: number } = {}) {
    this.refWindowMs = refWindowMs;
    const path = join(dataDir, CHAT_DB_FILE);
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      this.db = openPrivate(path);
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
        ts        INTEGER NOT NULL, -- ms since the Unix epoch
        account   INTEGER           -- 1: sent by an account (through the gateway), 0: by a guest, NULL: before the flag
      );
      CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, id) WHERE room IS NOT NULL;
      CREATE INDEX IF NOT EXISTS messages_by_recipient ON messages (recipient, id) WHERE recipient IS NOT NULL;
      CREATE INDEX IF NOT EXISTS direct_messages_by_sender ON messages (sender, id) WHERE recipient IS NOT NULL;
      CREATE TABLE IF NOT EXISTS sent_refs (
        sender     TEXT NOT NULL,
        ref        TEXT NOT NULL,
        message_id INTEGER NOT NULL,
        ts         INTEGER NOT NULL,  -- the message's ts: the window is counted from it
        PRIMARY KEY (sender, ref)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS sent_refs_by_ts ON sent_refs (ts);
      CREATE TABLE IF NOT EXISTS reserved_nicks (
        nick  TEXT PRIMARY KEY COLLATE NOCASE,
        since INTEGER NOT NULL  -- when an account first used it
      ) WITHOUT ROWID;
    `);
    const columns = this.db.prepare<[], { name: string }>('PRAGMA table_info(messages)').all();
    if (!columns.some((c) => c.name === 'account')) this.db.exec('ALTER TABLE messages ADD COLUMN account INTEGER');
    this.insertStmt = this.db.prepare('INSERT INTO messages (room, sender, recipient, text, ts, account) VALUES (?, ?, ?, ?, ?, ?)');
    this.recentStmt = this.db.prepare<[string, number], Row>(
      'SELECT * FROM (SELECT * FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?) ORDER BY id',
    );
    this.recentDirectStmt = this.db.prepare<[{ nick: string; limit: number }], Row>(RECENT_DIRECT_SQL);
    // REPLACE: a ref whose window has passed is free again, pruned or not (a clock that stepped back)
    this.insertRefStmt = this.db.prepare('INSERT OR REPLACE INTO sent_refs (sender, ref, message_id, ts) VALUES (?, ?, ?, ?)');
    this.sentStmt = this.db.prepare<[string, string, number], Row>(
      'SELECT m.* FROM sent_refs r JOIN messages m ON m.id = r.message_id WHERE r.sender = ? AND r.ref = ? AND r.ts >= ?',
    );
    this.pruneRefsStmt = this.db.prepare('DELETE FROM sent_refs WHERE ts < ?');
    this.reserveStmt = this.db.prepare('INSERT OR IGNORE INTO reserved_nicks (nick, since) VALUES (?, ?)');
    this.reservedStmt = this.db.prepare<[string], { nick: string }>('SELECT nick FROM reserved_nicks WHERE nick = ?');
    this.insertWithRef = this.db.transaction((row: InsertRow, ref: string) => {
      const [, sender, , , ts] = row;
      // Expired refs are already ignored by sentWithRef: deleting them is housekeeping, done at most
      // ten times per window rather than with every message.
      if (Math.abs(ts - this.lastPruneTs) >= this.refWindowMs / 10) {
        this.pruneRefsStmt.run(ts - this.refWindowMs);
        this.lastPruneTs = ts;
      }
      const id = Number(this.insertStmt.run(...row).lastInsertRowid);
      this.insertRefStmt.run(sender, ref, id, ts);
      return id;
    });
  }

  private insert(row: InsertRow, ref: string | undefined): number {
    return ref === undefined ? Number(this.insertStmt.run(...row).lastInsertRowid) : this.insertWithRef(row, ref);
  }

  /**
   * Stores a room message (committed when this returns) and returns it with its id and timestamp;
   * with `ref`, remembered for sentWithRef in the same commit. `account`: the sender is an account.
   */
  append(room: string, from: string, text: string, ts = Date.now(), ref?: string, account = false): ChatMessage {
    const id = this.insert([room, from, null, text, ts, account ? 1 : 0], ref);
    return { id, room, from, text, ts, account };
  }

  /** Stores a direct message (committed when this returns), as append does. */
  appendDirect(from: string, to: string, text: string, ts = Date.now(), ref?: string, account = false): DirectMessage {
    const id = this.insert([null, from, to, text, ts, account ? 1 : 0], ref);
    return { id, from, to, text, ts, account };
  }

  /** Marks `nick` as an account's (committed when this returns); idempotent. */
  reserveNick(nick: string, ts = Date.now()): void {
    this.reserveStmt.run(nick, ts);
  }

  /** Whether an account used `nick` (any spelling of its case), so only the account may hold it. */
  isReserved(nick: string): boolean {
    return this.reservedStmt.get(nick) !== undefined;
  }

  /** The message `sender` stored with `ref` within the last refWindowMs (before `now`), if any. */
  sentWithRef(sender: string, ref: string, now = Date.now()): SentMessage | undefined {
    const r = this.sentStmt.get(sender, ref, now - this.refWindowMs);
    if (!r) return undefined;
    return r.room !== null ? { kind: 'room', message: roomMessage(r) } : { kind: 'direct', message: directMessage(r) };
  }

  /** The last `limit` messages of `room`, oldest first. */
  recent(room: string, limit: number): ChatMessage[] {
    return this.recentStmt.all(room, limit).map(roomMessage);
  }

  /** The last `limit` direct messages sent to or by `nick`, oldest first. */
  recentDirect(nick: string, limit: number): DirectMessage[] {
    if (limit <= 0) return [];
    return this.recentDirectStmt.all({ nick, limit }).map(directMessage);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
