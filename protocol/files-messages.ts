// The files service contract (TCP port 7003). Every message is a frame (protocol/frame-codec.ts):
// requests and replies are frame headers; file bytes are frame bodies, never JSON.
//
//   put    {cmd:'put', filename, size|filesize, sha256?, offset?, resumable?, actor?, actorRole?} + body
//            → {cmd:'ok', op:'put', name, total, mtime, sha256}
//   chunked put, for a file whose length is not known up front (a browser's multipart part):
//          {cmd:'put', filename, chunked:true, sha256?, offset?, resumable?}   (no body)
//          {cmd:'chunk'} + body, any number of times (1..FILES_CHUNK_MAX_BYTES bytes each)
//          {cmd:'chunk'}   (no body: the end)
//            → the same ok as a sized put. maxFileSize and the quota apply to the running total.
//   get    {cmd:'get', filename, offset?}
//            → {cmd:'data', name, size, total, offset, mtime, sha256} + body (size = total - offset bytes)
//   list   {cmd:'list'}             → {cmd:'list', count, size} + JSON body: ListedFile[] (FileEntry + owner)
//   stat   {cmd:'stat', filename}   → {cmd:'stat', exists, name, total, mtime, sha256, partial?}
//   delete {cmd:'delete', filename, actor?, actorRole?} → {cmd:'ok', op:'delete', name}
//   any failure                     → {cmd:'error', code, message}
//
// A top-level `size` in any frame header is the length of the body that follows (frame-codec.ts), so
// replies give a file's size as `total`; the client maps it back to FileEntry.size.
// `size` on a put is the number of body bytes, i.e. the part of the file sent in this request:
// a resumed put sends bytes offset..offset+size, and the stored file is offset+size bytes long.
// The seed's MYTCPClient.put sends `filesize` instead of `size`; the codec accepts it (and only on put).
// `actor` names the account a put or delete acts for (the gateway sends it, with `actorRole`): a file
// records the actor of its last put as its owner, and an actor that is neither the owner nor an admin
// may not replace or delete it (SB_ERR_FILE_NOT_OWNER). A request without an actor is a direct client
// of the port, which is trusted (docs/security.md): it acts without the restriction and owns nothing.
// Pure module: shared by the service, its client, the CLI and the gateway.

import type { FileEntry, ListedFile } from './api.js';
import { sbError } from './errors.js';

export type { FileEntry, ListedFile };

export const FILES_DEFAULT_PORT = 7003;
/** The longest file name, in UTF-8 bytes (NAME_MAX on Linux). */
export const FILE_NAME_MAX_BYTES = 255;
/** The largest body of one `chunk` frame of a chunked put. */
export const FILES_CHUNK_MAX_BYTES = 1024 * 1024;
export const FILES_COMMANDS = ['put', 'chunk', 'get', 'list', 'stat', 'delete'] as const;
export type FilesCommand = (typeof FILES_COMMANDS)[number];

// ---- client → service ----
export interface PutRequest {
  cmd: 'put';
  filename: string;
  /** body bytes in this request (the codec sets it from the body length) */
  size?: number;
  /** the seed's spelling of size; accepted on put only */
  filesize?: number;
  /** lowercase hex sha256 of the whole file (offset 0 to the end): the upload is refused if it differs */
  sha256?: string;
  /** resume a kept partial upload whose size is exactly this (default 0: a fresh upload) */
  offset?: number;
  /** false: an interrupted upload is deleted at once instead of being kept for a resume (default true) */
  resumable?: boolean;
  /** true: no body and no size; the bytes follow in ChunkRequest frames (a chunked put) */
  chunked?: boolean;
  /** the account this put acts for; it becomes the file's owner (absent: a direct client, no owner) */
  actor?: string;
  /** the actor's role (default 'user'); an admin may replace anyone's file */
  actorRole?: ActorRole;
}
/** Part of a chunked put: a body of 1..FILES_CHUNK_MAX_BYTES bytes, or no body to end the upload. */
export interface ChunkRequest { cmd: 'chunk'; size?: number }
export interface GetRequest { cmd: 'get'; filename: string; offset?: number }
export interface ListRequest { cmd: 'list' }
export interface StatRequest { cmd: 'stat'; filename: string }
export interface DeleteRequest { cmd: 'delete'; filename: string; actor?: string; actorRole?: ActorRole }

export type ActorRole = 'admin' | 'user';
/** The account a put or delete acts for; undefined in the service means a direct client. */
export interface FileActor { name: string; admin: boolean }
/** Longest actor name, in characters: account names are much shorter (server/accounts/user-store.ts). */
const ACTOR_MAX_CHARS = 128;

/** The actor fields of a put or delete header, or undefined when it names none. */
export function parseActor(header: Record<string, unknown>): FileActor | undefined {
  const { actor, actorRole } = header;
  if (actor === undefined) {
    if (actorRole !== undefined) throw sbError('SB_ERR_BAD_REQUEST', 'actorRole without an actor');
    return undefined;
  }
  // The name is stored as the owner and shown in listings: no control characters.
  if (typeof actor !== 'string' || actor === '' || actor.length > ACTOR_MAX_CHARS || /\p{Cc}/u.test(actor)) {
    throw sbError('SB_ERR_BAD_REQUEST', `actor must be an account name of 1..${ACTOR_MAX_CHARS} characters without control characters`);
  }
  if (actorRole !== undefined && actorRole !== 'admin' && actorRole !== 'user') throw sbError('SB_ERR_BAD_REQUEST', 'actorRole must be "admin" or "user"');
  return { name: actor, admin: actorRole === 'admin' };
}

/**
 * Whether `actor` may replace or delete a file whose owner is `owner` (the account whose put made its
 * current version; null: a direct client's file, or one older than owners). Decided by the files
 * service (backends/files/file-owner.ts); the web client asks it only to offer what will be allowed.
 * - a direct client (no actor) is trusted, as the port always was (docs/security.md);
 * - an admin may change any file;
 * - a user may change the files they own (and create names that do not exist yet);
 * - a file without an owner only an admin (or a direct client) may change.
 */
export function mayChange(actor: FileActor | undefined, owner: string | null): boolean {
  return actor === undefined || actor.admin || (owner !== null && owner === actor.name);
}

/** The header fields that say who a put or delete acts for (none for a direct client). */
export function actorFields(actor: FileActor | undefined): { actor?: string; actorRole?: ActorRole } {
  return actor ? { actor: actor.name, actorRole: actor.admin ? 'admin' : 'user' } : {};
}
export type FilesRequest = PutRequest | ChunkRequest | GetRequest | ListRequest | StatRequest | DeleteRequest;

// ---- service → client ----
/** A file's entry on the wire: FileEntry with `size` renamed `total` (see above). */
export interface WireEntry { name: string; total: number; mtime: number; sha256: string }
export interface PutReply extends WireEntry { cmd: 'ok'; op: 'put' }
export interface DeleteReply { cmd: 'ok'; op: 'delete'; name: string }
/** Followed by `size` body bytes: the file from `offset` to `total`. */
export interface DataReply extends WireEntry {
  cmd: 'data';
  /** body bytes that follow (total - offset) */
  size: number;
  offset: number;
}
/** Followed by a JSON body of `size` bytes: FileEntry[] (a big listing never overflows the header limit). */
export interface ListReply { cmd: 'list'; count: number; size?: number }

/** A kept, interrupted upload: resume it with put {offset: size}. sha256 covers its bytes 0..size. */
export interface PartialInfo { size: number; mtime: number; sha256: string }

/**
 * `exists: false` only when a partial upload of the name is kept but no complete file is visible
 * (then total 0, mtime 0, sha256 ''); a name with neither is SB_ERR_FILE_NOT_FOUND.
 */
export interface StatReply extends WireEntry { cmd: 'stat'; exists: boolean; partial?: PartialInfo }
export interface ErrorReply { cmd: 'error'; code: string; message: string }
export type FilesReply = PutReply | DeleteReply | DataReply | ListReply | StatReply | ErrorReply;

/** What FilesClient.stat resolves with. */
export interface FileStat extends FileEntry { exists: boolean; partial?: PartialInfo }

export function toWireEntry(entry: FileEntry): WireEntry {
  return { name: entry.name, total: entry.size, mtime: entry.mtime, sha256: entry.sha256 };
}

/**
 * The FileEntry in a service reply (put's ok, get's data, stat), checked field by field: clients print
 * these fields on a terminal and put the sha256 in a file name (`get`'s .part), so what a broken or
 * hostile service sends is refused here, whole, with SB_ERR_MESSAGE_INVALID. A stat reply with
 * `exists: false` is the one place sha256 may be '' (no complete file; see StatReply).
 */
export function fromWireEntry(wire: Record<string, unknown>): FileEntry {
  return checkedEntry(wire, 'total', wire['exists'] === false);
}

/**
 * The JSON body of a list reply: ListedFile[], each checked as fromWireEntry checks one, and its
 * owner a non-empty string or null (a service older than owners sends none: null).
 */
export function parseFileList(value: unknown): ListedFile[] {
  if (!Array.isArray(value)) throw sbError('SB_ERR_MESSAGE_INVALID', 'files service list reply: the body is not a JSON array');
  return value.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw sbError('SB_ERR_MESSAGE_INVALID', `files service list reply: entry ${i} is not an object`);
    }
    const wire = item as Record<string, unknown>;
    const owner = wire['owner'];
    if (owner === undefined) return { ...checkedEntry(wire, 'size', false), owner: null };
    if (owner !== null && (typeof owner !== 'string' || owner === '')) {
      throw sbError('SB_ERR_MESSAGE_INVALID', `files service list reply: entry ${i}'s owner is not a non-empty string or null`);
    }
    return { ...checkedEntry(wire, 'size', false), owner };
  });
}

/** A stat reply's `partial` (a kept upload to resume), checked: its size becomes put's offset. */
export function parsePartialInfo(value: unknown): PartialInfo {
  const refuse = (what: string) => sbError('SB_ERR_MESSAGE_INVALID', `files service stat reply: "partial" ${what}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw refuse('is not an object');
  const { size, mtime, sha256 } = value as Record<string, unknown>;
  if (!isByteCount(size)) throw refuse('size is not a non-negative integer');
  if (!isTimeMs(mtime)) throw refuse('mtime is not an integer time in milliseconds');
  if (!isSha256Hex(sha256)) throw refuse('sha256 is not 64 lowercase hex digits');
  return { size, mtime, sha256 };
}

/** Date's range (ECMA-262 §21.4.1.22): an mtime beyond it would make `new Date(mtime)` invalid. */
const MAX_TIME_MS = 8.64e15;

function checkedEntry(wire: Record<string, unknown>, sizeKey: 'total' | 'size', noFile: boolean): FileEntry {
  const { name, mtime, sha256 } = wire;
  const size = wire[sizeKey];
  const refuse = (field: string, what: string) => sbError('SB_ERR_MESSAGE_INVALID', `files service reply: "${field}" is not ${what}`);
  if (typeof name !== 'string' || name === '') throw refuse('name', 'a non-empty string');
  if (!isByteCount(size)) throw refuse(sizeKey, 'a non-negative integer');
  if (!isTimeMs(mtime)) throw refuse('mtime', 'an integer time in milliseconds');
  if (!(isSha256Hex(sha256) || (noFile && sha256 === ''))) throw refuse('sha256', '64 lowercase hex digits');
  return { name, size, mtime, sha256: sha256 as string };
}

// Negative is allowed: the service reports a file last modified before 1970 as it is.
function isTimeMs(value: unknown): value is number {
  return Number.isSafeInteger(value) && Math.abs(value as number) <= MAX_TIME_MS;
}

function isByteCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
export function isSha256Hex(value: unknown): value is string {
  return typeof value === 'string' && SHA256_HEX.test(value);
}
