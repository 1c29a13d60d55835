// Writes events to one peer's socket with backpressure in both directions:
// - write() returning false pauses reading from that socket until 'drain', so a peer that sends
//   requests but never reads its replies stops being read instead of growing our buffers;
// - broadcasts cannot be paused (other people's messages keep coming), so a peer whose unread
//   output passes maxBufferedBytes is a slow consumer and is disconnected.

import type net from 'node:net';
import type { Logger } from 'pino';

export class SocketSink {
  private waitingForDrain = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly maxBufferedBytes: number,
    private readonly logger: Logger,
  ) {}

  write(bytes: Uint8Array | string): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    if (socket.writableLength > this.maxBufferedBytes) {
      this.logger.warn({ remote: socket.remoteAddress, buffered: socket.writableLength }, 'disconnecting a slow chat consumer');
      socket.destroy();
      return;
    }
    if (!socket.write(bytes) && !this.waitingForDrain) {
      this.waitingForDrain = true;
      socket.pause();
      socket.once('drain', () => {
        this.waitingForDrain = false;
        socket.resume();
      });
    }
  }
}
