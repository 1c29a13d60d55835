// A slowloris-style client for the slow-request tests: `head` at once, then one character of `drip`
// (cycled) every `everyMs` until stopped or the server closes the connection.
import net from 'node:net';

export interface SlowClient {
  /** everything the server sent back so far */
  answered(): string;
  /** resolves when the server (or stop()) closes the connection */
  closed: Promise<void>;
  stop(): void;
}

export async function slowClient(port: number, head: string, drip: string, everyMs: number): Promise<SlowClient> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  let answered = '';
  socket.on('data', (d) => (answered += d.toString()));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await new Promise((r) => socket.once('connect', r));
  if (head) socket.write(head);
  let i = 0;
  const timer = setInterval(() => {
    if (!socket.destroyed) socket.write(drip[i++ % drip.length]!);
  }, everyMs);
  return {
    answered: () => answered,
    closed,
    stop() {
      clearInterval(timer);
      socket.destroy();
    },
  };
}
