// One connection to the exec service: authentication, then any number of commands multiplexed
// by the client's ids. Frames are streamed (FrameDecoder, not whole frames): stdin bodies go to
// the child as they arrive. Backpressure both ways:
//   - socket.write() false → every command's output is paused until the socket drains;
//   - a child's stdin full → the socket is not read until that child drains.
// A protocol violation closes this connection only; a refused run is an error frame with its id.

import type net from 'node:net';
import { homedir } from 'node:os';
import type { Logger } from 'pino';
import { EXEC_REQUEST_COMMANDS, parseExecRequest, type ExecEvent, type RunRequest } from '../../protocol/exec-messages.js';
import { isSockbridgeError, sbError, type SockbridgeError } from '../../protocol/errors.js';
import { encodeFrame, encodeFrameHead, FrameDecoder, type FrameHeader } from '../../protocol/frame-codec.js';
import { decodeChunk } from '../lib/decode-chunk.js';
import { sendErrorAndClose } from '../lib/tcp-service.js';
import { childEnvironment, resolveProgram } from './program-policy.js';
import { RunningCommand, type CommandExit } from './running-command.js';
import { secretsEqual } from './secret.js';
import type { ExecOptions } from './exec-service.js';
import type { DataTokens } from './data-tokens.js';
import type { Program } from './program-policy.js';

/**
 * Output waits in the socket's buffer up to this much before the commands are paused. write()
 * turns false past the socket's 16 KiB high-water mark, i.e. after every 64 KiB pipe read, and
 * pausing there would stop reading the pipes once per chunk; 1 MiB keeps them flowing while the
 * memory per connection stays bounded.
 */
const OUTPUT_HIGH_WATER_BYTES = 1024 * 1024;

/**
 * Stdin credit per command (StartedEvent.stdinWindow). A client that keeps to it never fills a
 * command's stdin beyond it, so the connection is never paused for one command's stdin; past it
 * (a client that ignores the window) the socket is paused until the command drains.
 */
export const STDIN_WINDOW_BYTES = 1024 * 1024;

/** How long a background process may hold a finished command's pipes open. */
const OUTPUT_LINGER_MS = 1000;

/** Default terminal size when a pty run gives none. */
const DEFAULT_COLS = 80;
const DEFAULT_ROWS = 24;

/**
 * A data connection's stdout is not counted (the service never sees it), so `maxOutputBytes`
 * cannot hold for it. An operator who lowered the cap below this asked for it to hold: such a
 * service refuses `stdout: 'connection'` rather than quietly ignore its own limit.
 */
export const DATA_CONNECTION_MIN_OUTPUT_BYTES = 1024 * 1024 * 1024;

/** A `stdout: 'connection'` run between its data-token and its spawn. */
interface AwaitingData {
  token: string;
  /** set once the data connection attached, while the `attached` frame is being flushed */
  socket?: net.Socket;
}

export class ExecSession {
  private authenticated = false;
  private readonly authTimer: NodeJS.Timeout;
  private readonly decoder: FrameDecoder;
  private readonly commands = new Map<string, RunningCommand>();
  /** where the body of the stdin frame being read goes; null = to nobody (unknown id) */
  private stdinTarget: { id: string; command: RunningCommand } | null = null;
  /** the stdin frame being read asks to close stdin once its body is written */
  private stdinEof = false;
  private outputPaused = false;
  private readonly inputBlockers = new Set<RunningCommand>();
  private closed = false;
  private readonly awaitingData = new Map<string, AwaitingData>();
  /** this connection ran something or was handed to a run: it can no longer become a data connection */
  private used = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly options: Readonly<ExecOptions>,
    private readonly logger: Logger,
    /** every command of every session, so the service can wait for them on close() */
    private readonly track: (command: RunningCommand) => void,
    private readonly dataTokens: DataTokens,
  ) {
    this.decoder = new FrameDecoder({
      commands: EXEC_REQUEST_COMMANDS,
      // Only stdin carries a body; nothing has one before authentication.
      maxBodyBytes: (header) => (header.cmd === 'stdin' && this.authenticated ? options.maxStdinFrameBytes : 0),
    });
    this.authTimer = setTimeout(() => this.fail(sbError('SB_ERR_EXEC_AUTH_REQUIRED')), options.authTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('drain', () => this.resumeOutput());
    socket.once('close', () => this.onClose());
  }

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    const events = decodeChunk(this.decoder, chunk, (err) => this.fail(err));
    if (!events) return;
    for (const event of events) {
      if (this.closed) return;
      try {
        if (event.type === 'header') this.onHeader(event.header);
        else if (event.type === 'body') this.onStdinBytes(event.chunk);
        else this.onFrameEnd();
      } catch (err) {
        this.fail(err);
        return;
      }
    }
  }

  private onHeader(header: FrameHeader): void {
    const request = parseExecRequest(header);
    if (!this.authenticated) {
      if (request.cmd !== 'auth') throw sbError('SB_ERR_EXEC_AUTH_REQUIRED');
      if (!secretsEqual(request.secret, this.options.secret)) throw sbError('SB_ERR_EXEC_AUTH_FAILED');
      clearTimeout(this.authTimer);
      this.authenticated = true;
      this.send({ cmd: 'ready', allow: this.options.allow ? [...this.options.allow] : null, pty: this.options.pty });
      return;
    }
    switch (request.cmd) {
      case 'auth':
        throw sbError('SB_ERR_BAD_REQUEST', 'already authenticated');
      case 'run':
        this.refuseOr(request.id, () => this.run(request));
        return;
      case 'stdin': {
        const command = this.commands.get(request.id);
        this.stdinTarget = command ? { id: request.id, command } : null;
        this.stdinEof = Boolean(request.eof);
        // Not fatal: stdin racing a command's exit is normal.
        if (!command) this.send(errorEvent(sbError('SB_ERR_EXEC_NO_SUCH_JOB', request.id), request.id));
        return;
      }
      case 'resize':
        this.refuseOr(request.id, () => this.command(request.id).resize(request.cols, request.rows));
        return;
      case 'cancel':
        if (this.awaitingData.has(request.id)) this.abandonAwaiting(request.id, { code: null, signal: null, reason: 'cancelled' });
        else this.refuseOr(request.id, () => this.command(request.id).terminate('cancelled', request.signal));
        return;
      case 'attach': {
        if (this.used) throw sbError('SB_ERR_BAD_REQUEST', '"attach" must be the only request on a data connection');
        const claim = this.dataTokens.redeem(request.token);
        if (!claim) throw sbError('SB_ERR_EXEC_DATA_TOKEN');
        this.handOff();
        claim.attach(this.socket);
        return;
      }
    }
  }

  private run(request: RunRequest): void {
    const { options } = this;
    this.used = true;
    if (this.commands.has(request.id) || this.awaitingData.has(request.id)) throw sbError('SB_ERR_EXEC_DUPLICATE_ID', request.id);
    if (this.commands.size + this.awaitingData.size >= options.maxConcurrent) throw sbError('SB_ERR_EXEC_TOO_MANY', options.maxConcurrent);
    if (request.pty && !options.pty) throw sbError('SB_ERR_EXEC_NOT_ALLOWED', 'a pseudo-terminal', 'pty is disabled on this service');
    if (request.stdout === 'connection' && options.maxOutputBytes < DATA_CONNECTION_MIN_OUTPUT_BYTES) {
      throw sbError('SB_ERR_EXEC_NOT_ALLOWED', 'stdout over a data connection', `this service caps output at ${options.maxOutputBytes} bytes, which a data connection cannot enforce`);
    }
    // The allow-list is checked before a token is issued: a refused program never gets that far.
    const program = resolveProgram(request, options.allow, options.shell);
    if (request.stdout === 'connection') this.awaitData(request, program);
    else this.startCommand(request, program);
  }

  /** Issues the data token and waits (bounded) for the data connection before spawning anything. */
  private awaitData(request: RunRequest, program: Program): void {
    const { id } = request;
    const token = this.dataTokens.issue({
      attach: (socket) => this.onDataAttached(request, program, socket),
      expire: () => {
        if (!this.awaitingData.delete(id)) return;
        this.send(errorEvent(sbError('SB_ERR_EXEC_DATA_TIMEOUT', id, this.options.dataWaitMs), id));
      },
    });
    this.awaitingData.set(id, { token });
    this.send({ cmd: 'data-token', id, dataToken: token });
  }

  /**
   * The data connection came. The `attached` frame must be in the kernel before the child can
   * write a byte after it, so the child is spawned from the write's callback. The command then owns
   * this process's handle (it shuts the connection down when it finishes); a run that did not start
   * closes it here.
   */
  private onDataAttached(request: RunRequest, program: Program, socket: net.Socket): void {
    const awaiting = this.awaitingData.get(request.id);
    if (!awaiting || this.closed) {
      socket.destroy();
      return;
    }
    awaiting.socket = socket;
    socket.write(encodeFrame({ cmd: 'attached', id: request.id }), (err) => {
      if (this.awaitingData.get(request.id) !== awaiting) return; // cancelled or disconnected meanwhile
      this.awaitingData.delete(request.id);
      if (err || socket.destroyed) {
        this.send(errorEvent(sbError('SB_ERR_CONNECT', 'the data connection', 'it closed before the command started'), request.id));
        socket.destroy();
        return;
      }
      let started = false;
      try {
        this.refuseOr(request.id, () => {
          this.startCommand(request, program, socket);
          started = true;
        });
      } catch (failure) {
        this.fail(failure); // not a refusal: a bug, reported as SB_ERR_INTERNAL like any other
      } finally {
        if (!started) socket.destroy();
      }
    });
  }

  /** Ends a run still waiting for its data connection, as if it had run and ended with `exit`. */
  private abandonAwaiting(id: string, exit: CommandExit): void {
    const awaiting = this.awaitingData.get(id);
    if (!awaiting) return;
    this.awaitingData.delete(id);
    this.dataTokens.revoke(awaiting.token);
    awaiting.socket?.destroy();
    this.send({ cmd: 'exit', id, ...exit });
  }

  /** This connection becomes a run's stdout: stop reading it and forget it (the run owns it now). */
  private handOff(): void {
    this.used = true;
    this.closed = true;
    clearTimeout(this.authTimer);
    this.socket.pause();
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('drain');
  }

  private startCommand(request: RunRequest, program: Program, stdout?: net.Socket): void {
    const { options } = this;
    const command = RunningCommand.start(program, {
      env: childEnvironment(Boolean(request.pty)),
      cwd: options.cwd ?? homedir(),
      pty: request.pty ? { cols: request.cols ?? DEFAULT_COLS, rows: request.rows ?? DEFAULT_ROWS } : undefined,
      timeoutMs: Math.min(request.timeoutMs ?? options.timeoutMs, options.timeoutMs),
      maxOutputBytes: options.maxOutputBytes,
      killGraceMs: options.killGraceMs,
      lingerMs: OUTPUT_LINGER_MS,
      stdout,
    });
    const { id } = request;
    this.commands.set(id, command);
    this.track(command);
    this.logger.info({ id, pid: command.pid, program: program.file, pty: Boolean(request.pty), dataConnection: Boolean(stdout) }, 'exec started');
    if (this.outputPaused) command.pause();
    command.on('output', (stream, chunk) => this.send({ cmd: stream, id }, chunk));
    command.on('exit', (exit: CommandExit) => {
      this.commands.delete(id);
      this.unblockInput(command);
      if (this.stdinTarget?.command === command) this.stdinTarget = null;
      this.logger.info({ id, pid: command.pid, ...exit }, 'exec exited');
      this.send({ cmd: 'exit', id, ...exit });
    });
    this.send({ cmd: 'started', id, pid: command.pid, stdinWindow: STDIN_WINDOW_BYTES });
  }

  private onStdinBytes(chunk: Buffer): void {
    if (!this.stdinTarget) return;
    const { id, command } = this.stdinTarget;
    // The socket's chunks are fresh buffers, so handing on the decoder's slice is safe.
    command.write(chunk, () => {
      if (command.running) this.send({ cmd: 'stdin-ack', id, bytes: chunk.length });
    });
    if (command.pendingInput > STDIN_WINDOW_BYTES) this.blockInput(command);
  }

  private onFrameEnd(): void {
    if (this.stdinEof && this.stdinTarget?.command.running) this.stdinTarget.command.endInput();
    this.stdinTarget = null;
    this.stdinEof = false;
  }

  private blockInput(command: RunningCommand): void {
    if (this.inputBlockers.has(command)) return;
    this.inputBlockers.add(command);
    this.socket.pause();
    command.once('drain', () => this.unblockInput(command));
  }

  private unblockInput(command: RunningCommand): void {
    if (!this.inputBlockers.delete(command)) return;
    if (this.inputBlockers.size === 0 && !this.closed) this.socket.resume();
  }

  private command(id: string): RunningCommand {
    const command = this.commands.get(id);
    if (!command) throw sbError('SB_ERR_EXEC_NO_SUCH_JOB', id);
    return command;
  }

  /** Runs `action`; a refusal it throws (a SockbridgeError) is answered with the request's id, and the connection stays. */
  private refuseOr(id: string, action: () => void): void {
    try {
      action();
    } catch (err) {
      if (!isSockbridgeError(err) || err.code === 'SB_ERR_INTERNAL') throw err;
      this.send(errorEvent(err, id));
    }
  }

  private send(message: ExecEvent, body?: Buffer): void {
    if (this.closed || this.socket.destroyed) return;
    const event = message as ExecEvent & Record<string, unknown>;
    let ok: boolean;
    if (body && body.length > 0) {
      this.socket.cork();
      this.socket.write(encodeFrameHead(event, body.length));
      ok = this.socket.write(body);
      this.socket.uncork();
    } else {
      ok = this.socket.write(encodeFrame(event));
    }
    // Past the threshold write() has returned false, so 'drain' is sure to follow.
    if (!ok && this.socket.writableLength > OUTPUT_HIGH_WATER_BYTES) this.pauseOutput();
  }

  private pauseOutput(): void {
    if (this.outputPaused) return;
    this.outputPaused = true;
    for (const command of this.commands.values()) command.pause();
  }

  private resumeOutput(): void {
    if (!this.outputPaused) return;
    this.outputPaused = false;
    for (const command of this.commands.values()) command.resume();
  }

  private fail(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.authTimer);
    this.killAll();
    sendErrorAndClose(this.socket, err, this.logger);
  }

  private onClose(): void {
    this.closed = true;
    clearTimeout(this.authTimer);
    this.killAll();
  }

  private killAll(): void {
    for (const id of [...this.awaitingData.keys()]) this.abandonAwaiting(id, { code: null, signal: null, reason: 'disconnected' });
    for (const command of this.commands.values()) {
      command.resume(); // a paused child blocked on a full pipe must be able to die
      command.terminate('disconnected');
    }
  }
}

function errorEvent(err: SockbridgeError, id: string): ExecEvent {
  return { cmd: 'error', code: err.code, message: err.message, id };
}
