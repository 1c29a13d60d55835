// The client's end of a data connection (docs/protocol.md § exec, "Data connection"): connect,
// `auth`, `attach` with the run's token, read `ready` then `attached`, and from there on every byte
// is the command's raw stdout until EOF. The two handshake frames are parsed here by hand, not
// with FrameDecoder, because the bytes right after `attached` are no longer frames and must be
// handed on untouched.

import net from 'node:net';
import { errorFromFrame, sbError } from '../../protocol/errors.js';
import { encodeFrame, FRAME_PREFIX_BYTES } from '../../protocol/frame-codec.js';

export interface ExecEndpoint {
  host: string;
  port: number;
  secret: string;
}

/** The handshake frames are tiny; anything bigger is not an exec service. */
const MAX_HANDSHAKE_HEADER_BYTES = 64 * 1024;

/**
 * Resolves, once the service answered `attached`, with the paused socket and the stdout bytes that
 * came in the same read as `attached` (`head`): add a 'data' listener, then resume().
 * Rejects with the service's error (SB_ERR_EXEC_DATA_TOKEN…) or SB_ERR_CONNECT / SB_ERR_TIMEOUT.
 */
export function openDataConnection(endpoint: ExecEndpoint, token: string, timeoutMs = 10_000): Promise<{ socket: net.Socket; head: Buffer }> {
  const where = `${endpoint.host}:${endpoint.port}`;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    let buffered: Buffer = Buffer.alloc(0);
    let readyReceived = false;
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(sbError('SB_ERR_TIMEOUT', timeoutMs, `attaching a data connection to exec at ${where}`)), timeoutMs);
    socket.once('error', (err: NodeJS.ErrnoException) => fail(sbError('SB_ERR_CONNECT', where, err.code ?? err.message)));
    socket.once('close', () => fail(sbError('SB_ERR_CONNECT', where, 'data connection closed before "attached"')));
    socket.once('connect', () => socket.write(Buffer.concat([encodeFrame({ cmd: 'auth', secret: endpoint.secret }), encodeFrame({ cmd: 'attach', token })])));
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      for (;;) {
        if (buffered.length < FRAME_PREFIX_BYTES) return;
        const length = buffered.readInt32LE(0);
        if (length < 1 || length > MAX_HANDSHAKE_HEADER_BYTES) return fail(sbError('SB_ERR_CONNECT', where, 'not an exec service'));
        if (buffered.length < FRAME_PREFIX_BYTES + length) return;
        let header: Record<string, unknown>;
        try {
          header = JSON.parse(buffered.subarray(FRAME_PREFIX_BYTES, FRAME_PREFIX_BYTES + length).toString('utf8')) as Record<string, unknown>;
        } catch {
          return fail(sbError('SB_ERR_CONNECT', where, 'not an exec service'));
        }
        buffered = buffered.subarray(FRAME_PREFIX_BYTES + length);
        if (header['cmd'] === 'error') return fail(errorFromFrame(header, 'exec service error'));
        if (!readyReceived && header['cmd'] === 'ready') {
          readyReceived = true;
          continue;
        }
        if (readyReceived && header['cmd'] === 'attached') {
          clearTimeout(timer);
          socket.pause();
          socket.off('data', onData);
          socket.removeAllListeners('error');
          socket.removeAllListeners('close');
          resolve({ socket, head: buffered });
          return;
        }
        return fail(sbError('SB_ERR_CONNECT', where, `unexpected "${String(header['cmd']).slice(0, 32)}" on a data connection`));
      }
    };
    socket.on('data', onData);
  });
}
