// How a backend client hangs up: FIN after whatever is still queued, then wait for the peer to close.
import type net from 'node:net';

/** Ends the socket and resolves once it is closed; destroys it if it is still open after graceMs. */
export function endSocket(socket: net.Socket, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    const timer = setTimeout(() => socket.destroy(), graceMs).unref();
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end();
  });
}
