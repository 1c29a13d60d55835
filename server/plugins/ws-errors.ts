// What @fastify/websocket does with an error on a browser socket (its `errorHandler` option).
//
// Its default logs every error at error level and terminates the socket at once. Most of these
// errors are the client's doing: a protocol violation ws has detected (RSV bits, invalid UTF-8, a
// message over maxPayload: ws codes WS_ERR_*) or a peer that vanished (ECONNRESET, EPIPE). Logging
// them at error level hands the log to whoever sends bad frames, and terminating at once destroys
// the TCP connection while ws's close frame may still be queued and the client's unread bytes still
// wait in the kernel, which then answers with a reset that can discard the close frame before the
// client reads it (RFC 6455 §7.1.1 wants the server to close the TCP connection after the closing
// handshake, not instead of it).
//
// Here a client-side error is logged at info with who and where (user, address, Origin: never
// contents), ws is left to finish its closing handshake (it has already sent the close frame with
// the right code, RFC 6455 §7.4.1, and keeps draining the socket), and the socket is terminated
// only if the peer has not completed the handshake within CLOSE_GRACE_MS (ws-close.ts). Any other
// error is ours (a route handler that threw): logged at error and closed with 1011.

import type { FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { WS_CLOSE } from '../../protocol/errors.js';
import { socketPeer } from './auth.js';
import { dropIfUnanswered } from './ws-close.js';

/** Socket errors that mean the peer went away, not that we failed. */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED']);

/** True for errors the client caused: ws protocol violations and a peer that vanished. */
export function isClientSideError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('WS_ERR_') || PEER_GONE.has(code));
}

export function websocketErrorHandler(err: Error, socket: WebSocket, request: FastifyRequest): void {
  const code = (err as { code?: unknown }).code;
  if (isClientSideError(err)) {
    request.log.info({ ...socketPeer(request), url: request.url, wsError: code }, 'websocket closed after a client error');
  } else {
    request.log.error({ ...socketPeer(request), url: request.url, err }, 'websocket handler failed');
    if (socket.readyState === socket.OPEN) socket.close(WS_CLOSE.INTERNAL_ERROR, 'SB_ERR_INTERNAL');
  }
  dropIfUnanswered(socket);
}
