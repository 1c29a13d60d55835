// The browser ↔ gateway contract over HTTP (docs/api.md) and /ws/time. Chat and exec messages
// are in chat-messages.ts and exec-messages.ts. Imported by the gateway and the web client.

import type { ErrorCode } from './errors.js';

export type Role = 'admin' | 'user';
export type ServiceName = 'chat' | 'exec' | 'files' | 'time';

/** Every HTTP error body, with a fitting status. */
export interface ApiError { error: { code: ErrorCode | string; message: string } }

export interface LoginRequest { username: string; password: string }
/** What the client may send in one upload (POST /api/files), so it can refuse too much before sending. */
export interface UploadLimits { maxUploadBytes: number; maxUploadFiles: number }
export interface Me { username: string; role: Role; limits: UploadLimits }

export interface ServiceHealth {
  status: 'up' | 'down';
  /** when the status last changed, ms since epoch */
  since: number;
  /** a short, secret-free reason when down */
  reason?: string;
}
export interface Health { services: Record<ServiceName, ServiceHealth> }

export interface FileEntry {
  name: string;
  size: number;
  /** ms since epoch */
  mtime: number;
  sha256: string;
}
/**
 * A file in a listing, with the account that uploaded its current version: only that account or an
 * admin may replace or delete it. null: no account (uploaded by a direct client of the files service,
 * such as the seed's, or before files had owners): only an admin may.
 */
export interface ListedFile extends FileEntry { owner: string | null }
export interface FileList { files: ListedFile[] }
export interface UploadResult { files: FileEntry[] }
/** A multipart upload refused part-way: the files stored before the failure stay, listed here. */
export interface UploadFailure extends ApiError { files: FileEntry[] }

// ---- /ws/time (JSON text messages) ----
// The NTP four-timestamp exchange (RFC 5905 §8) over a WebSocket: the browser sends t0 by its clock,
// the gateway stamps t1 on receipt and t2 on send by the server clock, the browser stamps t3.
// offset = ((t1 - t0) + (t2 - t3)) / 2, delay = (t3 - t0) - (t2 - t1).
export interface TimePing { cmd: 'ping'; t0: number }
export interface TimePong { cmd: 'pong'; t0: number; t1: number; t2: number }
/** Pushed once a second. */
export interface TimeStatus {
  cmd: 'status';
  /** gateway clock, ms since epoch */
  serverTime: number;
  /** the gateway's own NTP measurement against the time service, null when it is down */
  upstream: { offsetMs: number; delayMs: number; stratum: number } | null;
}
export type TimeClientMessage = TimePing;
export type TimeServerMessage = TimePong | TimeStatus;

export function ntpOffset(t0: number, t1: number, t2: number, t3: number): { offset: number; delay: number } {
  return { offset: (t1 - t0 + (t2 - t3)) / 2, delay: t3 - t0 - (t2 - t1) };
}
