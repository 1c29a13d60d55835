// /ws/exec (admins only): one TCP connection to the exec service per browser socket, authenticated by
// the gateway with the shared secret (the browser never sees it). JSON text messages are control
// requests (run, stdin eof, resize, cancel); binary messages carry stdin bytes (encodeExecData).
// The service's control frames reach the browser as JSON, its stdout/stderr frame bodies as binary
// messages, streamed chunk by chunk as they arrive. Ctrl-C reaches a pty as the byte 0x03 in stdin
// (the terminal line discipline turns it into SIGINT) or, without a pty, as {cmd:'cancel'}.
// Closing the tab closes the TCP connection, and the service kills that connection's commands.

import type { FastifyInstance } from 'fastify';
import type { GatewayOptions } from '../gateway-options.js';
import { parseBackendUrl } from '../upstream/backend-url.js';
import { parseExecClientMessage } from '../../protocol/browser-messages.js';
import { encodeExecData, type ExecStreamName } from '../../protocol/exec-messages.js';
import { sbError } from '../../protocol/errors.js';
import {
  BackendLink,
  acceptBrowserSocket,
  closeWithError,
  onBrowserMessage,
  readSecret,
  reportBackendFailure,
} from './ws-common.js';

/** Largest stdout/stderr frame body accepted from the service (it sends far smaller chunks). */
const MAX_OUTPUT_FRAME_BYTES = 1024 * 1024;

export async function wsExecRoutes(app: FastifyInstance, opts: { options: GatewayOptions }): Promise<void> {
  const { options } = opts;
  const { limits } = options;
  const execAddress = parseBackendUrl(options.exec, 'tcp', 'exec service');
  const secret = readSecret(options.execSecret, options.execSecretFile, options.data, 'exec.secret');
  if (!secret) app.log.warn('no exec secret (execSecret or DATA/exec.secret): /ws/exec will refuse every socket');

  app.get('/ws/exec', { websocket: true, preValidation: app.wsGuard({ role: 'admin' }) }, (socket, request) => {
    const accepted = acceptBrowserSocket(app, socket, request, 'exec');
    if (!accepted) return;
    const { logger } = accepted;
    if (!secret) {
      app.health.markDown('exec', 'the gateway has no exec secret');
      return closeWithError(socket, sbError('SB_ERR_BACKEND_DOWN', 'exec', 'the gateway has no exec secret configured'));
    }

    // The stream and id of the output frame whose body is arriving.
    let output: { stream: ExecStreamName; id: string } | undefined;
    const link = new BackendLink(socket, {
      service: 'exec',
      address: execAddress,
      highWaterBytes: limits.wsHighWaterBytes,
      maxBodyBytes: MAX_OUTPUT_FRAME_BYTES,
      logger,
      onHeader(header) {
        const { cmd } = header;
        if ((cmd === 'stdout' || cmd === 'stderr') && typeof header['id'] === 'string') {
          output = { stream: cmd, id: header['id'] };
          return;
        }
        output = undefined;
        if (cmd === 'ready') app.health.markUp('exec');
        const { size: _size, ...event } = header;
        link.sendToBrowser(JSON.stringify(event), false);
      },
      onBody(chunk) {
        // Only output frames have bodies the browser needs; encodeExecData copies the slice.
        if (output) link.sendToBrowser(encodeExecData(output.stream, output.id, chunk), true);
      },
      onEnd() {
        output = undefined;
      },
      onFailure(err) {
        // The service refusing the gateway's own secret is a configuration fault nobody can use exec through.
        const failure = err.code.startsWith('SB_ERR_EXEC_AUTH_')
          ? sbError('SB_ERR_BACKEND_DOWN', 'exec', 'it refused the gateway\'s secret (check execSecret or DATA/exec.secret)')
          : err;
        reportBackendFailure(socket, failure, { service: 'exec', logger, markDown: (s, r) => app.health.markDown(s, r) });
      },
    });
    link.sendFrame({ cmd: 'auth', secret });

    onBrowserMessage(socket, {
      maxBytes: limits.wsMaxMessageBytes,
      logger,
      onText(text) {
        const message = parseExecClientMessage(text);
        if (message.kind === 'control') {
          if (message.request.cmd === 'run') logger.info({ id: message.request.id, pty: message.request.pty === true }, 'exec run');
          link.sendFrame(message.request);
        }
      },
      onBinary(data) {
        const message = parseExecClientMessage(data);
        if (message.kind === 'stdin') link.sendFrame({ cmd: 'stdin', id: message.id }, message.payload);
      },
    });
  });
}
