// The seed's text time protocol (question 11 of the course): the client sends the 4 bytes `time`
// in one UDP datagram, the server answers with its local time as 19 ASCII bytes
// `YYYY-MM-DD HH:MM:SS` (Python's time.strftime('%Y-%m-%d %H:%M:%S', time.localtime())).
// The seed encoded the reply as GBK; for these characters GBK, ASCII and UTF-8 are identical.
// Pure: no sockets, the caller passes the date.

import { Buffer } from 'node:buffer';
import { sbError } from './errors.js';

export const TIME_TEXT_REQUEST = 'time';
export const TIME_TEXT_REPLY_BYTES = 19;
export const TIME_TEXT_PATTERN = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

const REQUEST_BYTES = Buffer.from(TIME_TEXT_REQUEST, 'ascii');

/**
 * True for exactly `time`, `time\n` or `time\r\n`: the seed sends the 4 bytes, a user typing into
 * `nc -u` sends a newline. Nothing else (no other case, no padding) is the text request.
 */
export function isTimeTextRequest(bytes: Uint8Array): boolean {
  if (bytes.length < 4 || bytes.length > 6) return false;
  for (let i = 0; i < 4; i++) if (bytes[i] !== REQUEST_BYTES[i]) return false;
  const tail = Buffer.from(bytes.subarray(4)).toString('latin1');
  return tail === '' || tail === '\n' || tail === '\r\n';
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `YYYY-MM-DD HH:MM:SS` in the process's local time zone, as the seed's strftime. */
export function formatTimeText(date: Date): string {
  return (
    `${pad(date.getFullYear(), 4)}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

export function encodeTimeTextReply(date: Date): Buffer {
  return Buffer.from(formatTimeText(date), 'ascii');
}

/** Validates a reply from the wire; anything but the 19-byte line is SB_ERR_NTP_REPLY. */
export function decodeTimeTextReply(bytes: Uint8Array): string {
  const text = Buffer.from(bytes).toString('latin1');
  if (bytes.length !== TIME_TEXT_REPLY_BYTES || !TIME_TEXT_PATTERN.test(text)) {
    throw sbError('SB_ERR_NTP_REPLY', 'text', `not YYYY-MM-DD HH:MM:SS (${bytes.length} bytes)`);
  }
  return text;
}
