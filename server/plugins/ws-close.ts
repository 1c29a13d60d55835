// Closing a browser socket without waiting on the peer: ws keeps a socket whose peer never answers
// our Close frame for 30 s (and, until its 'close' event, whatever the socket drives upstream), so
// every close the gateway starts gives the peer CLOSE_GRACE_MS to finish the closing handshake
// (RFC 6455 §7.1.1) and then destroys the connection.

import type { WebSocket } from 'ws';

/** How long a peer has to answer our Close frame before its connection is destroyed. */
export const CLOSE_GRACE_MS = 1000;

/** Destroys `ws` if the closing handshake it is in has not completed within CLOSE_GRACE_MS. */
export function dropIfUnanswered(ws: WebSocket): void {
  if (ws.readyState === ws.CLOSED) return;
  const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
  timer.unref();
  ws.once('close', () => clearTimeout(timer));
}

/** Sends a Close frame with `code` and `reason`, then dropIfUnanswered. */
export function closeWithGrace(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === ws.CLOSED) return;
  // A paused socket would never read the peer's Close frame.
  if (ws.isPaused) ws.resume();
  ws.close(code, reason);
  dropIfUnanswered(ws);
}
