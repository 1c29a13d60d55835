// A test double of a hostile peer (not of our own services): a frame server on 127.0.0.1:0 that
// answers each request header as the test says, with whatever a broken or malicious service might send.
import net from 'node:net';
import { WholeFrameDecoder, type FrameHeader } from '../../../protocol/frame-codec.js';

export type Answer = (socket: net.Socket, request: FrameHeader) => void;

const servers = new Set<net.Server>();
const sockets = new Set<net.Socket>();

export async function hostileService(answer: Answer): Promise<number> {
  const server = net.createServer((socket) => {
    const decoder = new WholeFrameDecoder({ maxHeaderBytes: 1 << 20, maxBodyBytes: 1 << 20 });
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      for (const { header } of decoder.push(chunk)) answer(socket, header);
    });
  });
  servers.add(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

export async function closeHostileServices(): Promise<void> {
  for (const socket of sockets) socket.destroy();
  const all = [...servers];
  servers.clear();
  await Promise.all(all.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
}
