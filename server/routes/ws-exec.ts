// /ws/exec (admins only): one TCP connection to the exec service per browser socket, authenticated by
// the gateway with the shared secret (the browser never sees it). JSON text messages are control
// requests (run, stdin eof, resize, cancel); binary messages carry stdin bytes (encodeExecData).
// The service's control frames reach the browser as JSON, its stdout/stderr frame bodies as binary
// messages, streamed chunk by chunk as they arrive. Ctrl-C reaches a pty as the byte 0x03 in stdin
// (the terminal line discipline turns it into SIGINT) or, without a pty, as {cmd:'cancel'}.
// Closing the tab closes the TCP connection, and the service kills that connection's commands.
// Stdin keeps within each command's window (StdinWindows below), so one command that ignores its
// stdin never stops the service reading this connection (the other commands, cancel, the close).

import type { FastifyInstance } from 'fastify';
import type { GatewayOptions } from '../gateway-options.js';
import { parseBackendUrl } from '../upstream/backend-url.js';
import { parseExecClientMessage } from '../../protocol/browser-messages.js';
import { encodeExecData, type ExecStreamName } from '../../protocol/exec-messages.js';
import { sbError, type SockbridgeError } from '../../protocol/errors.js';
import { roleAllows } from '../accounts/user-store.js';
import {
  BackendLink,
  acceptBrowserSocket,
  closeWithError,
  onBrowserMessage,
  readSecret,
  reportBackendFailure,
  sendJson,
} from './ws-common.js';

/** Largest stdout/stderr frame body accepted from the service (it sends far smaller chunks). */
const MAX_OUTPUT_FRAME_BYTES = 1024 * 1024;

type StdinFrame = { cmd: 'stdin'; id: string; eof?: boolean };

interface CommandStdin {
  /** the service's StartedEvent.stdinWindow; 0 until `started` (nothing is sent before it is known) */
  window: number;
  started: boolean;
  /** sent to the service and not yet acknowledged by `stdin-ack` */
  inFlight: number;
  /** waiting for the window, in order; 'eof' closes stdin once the bytes before it are sent */
  queue: (Uint8Array | 'eof')[];
  queuedBytes: number;
}

/**
 * Stdin flow control between the gateway and the exec service, per command, as an SSH channel
 * window (RFC 4254 §5.2): at most StartedEvent.stdinWindow bytes sent and not yet acknowledged by a
 * `stdin-ack`. A client that overruns a command's window makes the service stop reading the whole
 * connection until that command drains, so a paste into a command that never reads its stdin would
 * stall every other command, `cancel`, and the service's view of the tab closing.
 *
 * Bytes beyond the window wait here: at most one more window per command and
 * `limits.execMaxQueuedStdinBytes` (4 MiB) per socket. A message that does not fit is refused whole (SB_ERR_EXEC_STDIN_FULL with its id,
 * like EAGAIN): nothing of it is sent, and the messages that were accepted keep their order. The
 * browser receives every `started` and `stdin-ack` too, so a page that keeps to the window itself
 * (web/src/lib/exec.svelte.ts) never has anything wait here or refused.
 */
export class StdinWindows {
  private readonly commands = new Map<string, CommandStdin>();
  private queuedBytes = 0;

  constructor(
    private readonly send: (frame: StdinFrame, body?: Uint8Array) => void,
    private readonly maxQueuedBytes: number,
  ) {}

  /** A `run` is on its way to the service: its stdin waits for `started` to learn the window. */
  onRun(id: string): void {
    // A duplicate id is the service's to refuse; the running command keeps its state.
    if (!this.commands.has(id)) this.commands.set(id, { window: 0, started: false, inFlight: 0, queue: [], queuedBytes: 0 });
  }

  onStarted(id: string, stdinWindow: unknown): void {
    const command = this.commands.get(id);
    if (!command) return;
    command.started = true;
    // A service that announces no window gets no limit (as ExecClient does).
    command.window = typeof stdinWindow === 'number' && stdinWindow > 0 ? stdinWindow : Infinity;
    this.flush(id, command);
  }

  onAck(id: string, bytes: unknown): void {
    const command = this.commands.get(id);
    if (!command || typeof bytes !== 'number' || !(bytes > 0)) return;
    command.inFlight = Math.max(0, command.inFlight - bytes);
    this.flush(id, command);
  }

  /** An error event with this id: a run refused before it started is over; others are informational. */
  onError(id: string): void {
    if (this.commands.get(id)?.started === false) this.onGone(id);
  }

  /** The command exited (or never ran): what still waits for it is dropped. */
  onGone(id: string): void {
    const command = this.commands.get(id);
    if (!command) return;
    this.queuedBytes -= command.queuedBytes;
    this.commands.delete(id);
  }

  /** Stdin bytes (and/or eof) from the browser; returns the refusal when they do not fit. */
  write(id: string, payload: Uint8Array | undefined, eof = false): SockbridgeError | undefined {
    const command = this.commands.get(id);
    // Not a command of ours: the service answers SB_ERR_EXEC_NO_SUCH_JOB with the id.
    if (!command) return void this.send(eof ? { cmd: 'stdin', id, eof } : { cmd: 'stdin', id }, payload);
    const bytes = payload?.length ?? 0;
    if (bytes > 0) {
      const sendable = command.queue.length === 0 ? Math.max(0, command.window - command.inFlight) : 0;
      const waiting = Math.max(0, bytes - sendable);
      const commandRoom = command.started ? command.window - command.queuedBytes : Infinity;
      if (waiting > commandRoom || waiting > this.maxQueuedBytes - this.queuedBytes) {
        return sbError('SB_ERR_EXEC_STDIN_FULL', id, command.queuedBytes + command.inFlight);
      }
      command.queue.push(payload!);
      command.queuedBytes += bytes;
      this.queuedBytes += bytes;
    }
    // Repeated eofs are one eof; an eof waits behind the bytes sent before it.
    if (eof && command.queue.at(-1) !== 'eof') command.queue.push('eof');
    this.flush(id, command);
    return undefined;
  }

  private flush(id: string, command: CommandStdin): void {
    while (command.queue.length > 0) {
      const head = command.queue[0]!;
      if (head === 'eof') {
        command.queue.shift();
        this.send({ cmd: 'stdin', id, eof: true });
        continue;
      }
      const room = command.window - command.inFlight;
      if (room <= 0) return;
      const n = Math.min(head.length, room);
      this.send({ cmd: 'stdin', id }, n === head.length ? head : head.subarray(0, n));
      command.inFlight += n;
      command.queuedBytes -= n;
      this.queuedBytes -= n;
      if (n === head.length) command.queue.shift();
      else command.queue[0] = head.subarray(n);
    }
  }
}

export async function wsExecRoutes(app: FastifyInstance, opts: { options: GatewayOptions }): Promise<void> {
  const { options } = opts;
  const { limits } = options;
  const execAddress = parseBackendUrl(options.exec, 'tcp', 'exec service');
  const secret = readSecret(options.execSecret, options.execSecretFile, options.data, 'exec.secret');
  if (!secret) app.log.warn('no exec secret (execSecret or DATA/exec.secret): /ws/exec will refuse every socket');

  app.get('/ws/exec', { websocket: true, preValidation: app.wsGuard({ role: 'admin' }) }, (socket, request) => {
    const accepted = acceptBrowserSocket(app, socket, request, 'exec');
    if (!accepted) return;
    const { logger, sessionId } = accepted;
    // Defence in depth behind the periodic account check: before each command, the session must still
    // exist and its account still be an admin now (one indexed SQLite lookup). A check that fails has
    // already revoked the session or closed this socket; the close here covers the rest.
    const stillAdmin = (): boolean => {
      const session = app.sessions.get(sessionId);
      const checked = session ? app.accountCheck.check(session) : null;
      return checked !== null && roleAllows(checked.role, 'admin');
    };
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
        const id = typeof header['id'] === 'string' ? header['id'] : undefined;
        if (id !== undefined) {
          if (cmd === 'started') stdin.onStarted(id, header['stdinWindow']);
          else if (cmd === 'stdin-ack') stdin.onAck(id, header['bytes']);
          else if (cmd === 'exit') stdin.onGone(id);
          else if (cmd === 'error') stdin.onError(id);
        }
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
    const stdin = new StdinWindows((frame, body) => link.sendFrame(frame, body), limits.execMaxQueuedStdinBytes);
    link.sendFrame({ cmd: 'auth', secret });
    const refuseStdin = (id: string, err: SockbridgeError | undefined) => {
      if (err) sendJson(socket, { cmd: 'error', code: err.code, message: err.message, id });
    };

    onBrowserMessage(socket, {
      maxBytes: limits.wsMaxMessageBytes,
      logger,
      onText(text) {
        const message = parseExecClientMessage(text);
        if (message.kind !== 'control') return;
        const { request } = message;
        if (request.cmd === 'stdin') return refuseStdin(request.id, stdin.write(request.id, undefined, request.eof === true));
        if (request.cmd === 'run') {
          if (!stillAdmin()) {
            logger.info({ id: request.id }, 'exec run refused: the session no longer has the admin role');
            return closeWithError(socket, sbError('SB_ERR_FORBIDDEN', 'this needs the admin role'));
          }
          logger.info({ id: request.id, pty: request.pty === true }, 'exec run');
          stdin.onRun(request.id);
        }
        link.sendFrame(request);
      },
      onBinary(data) {
        const message = parseExecClientMessage(data);
        if (message.kind === 'stdin') refuseStdin(message.id, stdin.write(message.id, message.payload));
      },
    });
  });
}
