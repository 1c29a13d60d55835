// A client command pointed at the wrong port (chat's line port, the gateway's HTTP port, another
// service) reads bytes that are no sockbridge frame, and the decoder's words ("frame header length
// 1702305834 is outside 1..4194304 bytes") do not tell a user what to fix. This names the likely cause.

import type { SockbridgeError } from '../../protocol/errors.js';

/** Codes a client gets when the peer is not the service it meant (for FRAME_CMD_UNKNOWN: another sockbridge service). */
const WRONG_PEER_CODES = new Set<string>([
  'SB_ERR_FRAME_HEADER_LENGTH',
  'SB_ERR_FRAME_HEADER_UTF8',
  'SB_ERR_FRAME_HEADER_JSON',
  'SB_ERR_FRAME_HEADER_NOT_OBJECT',
  'SB_ERR_FRAME_CMD_UNKNOWN',
]);

/** The files client reports a reply that is no frame as the service being down, naming the decoder's code. */
const MALFORMED_REPLY = /malformed reply \((SB_ERR_FRAME_[A-Z_]+)\)/;

/** A header length whose four bytes (int32 LE) are printable ASCII was text: "welc", "HTTP". */
function lengthWasText(message: string): boolean {
  const length = /frame header length (\d+)/.exec(message)?.[1];
  if (length === undefined || Number(length) > 0xffffffff) return false;
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(Number(length));
  return bytes.every((b) => (b >= 0x20 && b < 0x7f) || b === 0x09 || b === 0x0a || b === 0x0d);
}

/** What to append to the error's one line, or '' when the error says nothing about the peer. */
export function wrongServiceHint(err: SockbridgeError): string {
  const code = err.code === 'SB_ERR_BACKEND_DOWN' ? MALFORMED_REPLY.exec(err.message)?.[1] : err.code;
  if (code === undefined || !WRONG_PEER_CODES.has(code)) return '';
  if (lengthWasText(err.message)) return '; is HOST:PORT the right service? this looks like a text/line port';
  return '; is HOST:PORT the right service?';
}
