// The terminal panel's state: one command at a time over /ws/exec (admins only).
// Control messages are JSON; stdout/stderr/stdin bytes are binary messages (protocol/exec-messages.ts),
// so output goes to xterm as bytes and a UTF-8 sequence split across two messages still renders.
import { decodeExecData, encodeExecData, type ExecEvent, type ExecRequest, type RunRequest } from '../../../protocol/exec-messages.js';
import { wsUrl } from './api.js';
import { parseJsonFrame, ReconnectingSocket } from './reconnecting-socket.svelte.js';

/** Where output goes: the xterm.js Terminal, kept out of this class so it stays DOM-free. */
export interface TerminalSink {
  write(data: string | Uint8Array): void;
  readonly cols: number;
  readonly rows: number;
}

export interface RunningCommand {
  id: string;
  command: string;
  pty: boolean;
  pid: number | null;
}

export interface FinishedCommand {
  command: string;
  code: number | null;
  signal: string | null;
  reason?: string;
}

const encoder = new TextEncoder();

export class ExecSession {
  running = $state<RunningCommand | null>(null);
  last = $state<FinishedCommand | null>(null);
  /** whether the service offers pseudo-terminals, and its allow-list (null: any command) */
  ptyAvailable = $state(true);
  allow = $state<string[] | null>(null);
  lastError = $state<{ code: string; message: string } | null>(null);

  readonly socket: ReconnectingSocket;
  #sink: TerminalSink | null = null;
  #counter = 0;
  // Stdin flow control (StartedEvent.stdinWindow, like an SSH channel window): never more unacknowledged
  // bytes than the service allows, so a command that does not read stdin cannot stall the connection
  // and a later Ctrl-C still gets through. Excess input waits here until a stdin-ack opens the window.
  #stdinWindow = Infinity;
  #stdinQueue: Uint8Array[] = [];

  /** The socket waits for socket.start(): the shell opens it when an admin first shows the Terminal panel. */
  constructor() {
    this.socket = new ReconnectingSocket({
      url: () => wsUrl('/ws/exec'),
      startNow: false,
      onMessage: (data) => this.#handle(data),
      onClose: () => {
        // the gateway kills a closed socket's commands, so the one we had is over
        if (this.running) {
          this.#finish({ command: this.running.command, code: null, signal: null, reason: 'disconnected' });
        }
      },
    });
  }

  attach(sink: TerminalSink): void {
    this.#sink = sink;
  }

  /** The terminal is going away (the panel unmounts when the account loses the admin role): write nothing more to it. */
  detach(sink: TerminalSink): void {
    if (this.#sink === sink) this.#sink = null;
  }

  close(): void {
    this.socket.close();
  }

  /** Starts a command (`sh -c`), or an interactive shell when `command` is empty and pty is on. */
  run(command: string, pty: boolean): string | null {
    if (this.running) return 'A command is already running';
    const text = command.trim();
    if (!text) return 'Type a command';
    const id = `c${Date.now().toString(36)}${(this.#counter++).toString(36)}`;
    const request: RunRequest = { cmd: 'run', id, command: text, pty };
    if (pty && this.#sink) {
      request.cols = this.#sink.cols;
      request.rows = this.#sink.rows;
    }
    if (!this.socket.sendJson(request)) return 'Not connected to the exec service';
    this.running = { id, command: text, pty, pid: null };
    this.#stdinWindow = Infinity;
    this.#stdinQueue = [];
    this.last = null;
    this.lastError = null;
    this.#sink?.write(`\r\n\x1b[1;36m$ ${text}\x1b[0m\r\n`);
    return null;
  }

  /** Ctrl-C: SIGINT to the whole process group. */
  cancel(signal: 'SIGINT' | 'SIGTERM' | 'SIGKILL' = 'SIGINT'): void {
    if (!this.running) return;
    this.#send({ cmd: 'cancel', id: this.running.id, signal });
  }

  /** Keystrokes from xterm while a command runs. */
  input(data: string): void {
    const running = this.running;
    if (!running) return;
    if (!running.pty) {
      // No terminal line discipline without a pty: Ctrl-C cancels, Ctrl-D closes stdin, Enter is a newline,
      // and we echo locally because nothing else will.
      if (data === '\x03') return this.cancel('SIGINT');
      if (data === '\x04') {
        this.#send({ cmd: 'stdin', id: running.id, eof: true });
        return;
      }
      data = data.replace(/\r/g, '\n');
      this.#sink?.write(data.replace(/\n/g, '\r\n'));
    }
    this.#stdinQueue.push(encoder.encode(data));
    this.#flushStdin();
  }

  #flushStdin(): void {
    const running = this.running;
    if (!running) return;
    while (this.#stdinQueue.length > 0 && this.#stdinWindow > 0) {
      let chunk = this.#stdinQueue[0]!;
      if (chunk.length > this.#stdinWindow) {
        this.#stdinQueue[0] = chunk.subarray(this.#stdinWindow);
        chunk = chunk.subarray(0, this.#stdinWindow);
      } else {
        this.#stdinQueue.shift();
      }
      this.#stdinWindow -= chunk.length;
      this.socket.send(encodeExecData('stdin', running.id, chunk));
    }
  }

  resize(cols: number, rows: number): void {
    if (this.running?.pty) this.#send({ cmd: 'resize', id: this.running.id, cols, rows });
  }

  #send(request: ExecRequest): void {
    this.socket.sendJson(request);
  }

  #finish(result: FinishedCommand): void {
    this.last = result;
    this.running = null;
    const colour = result.code === 0 ? '32' : '31';
    const what = result.code !== null ? `exit code ${result.code}` : `killed by ${result.signal ?? 'the gateway'}`;
    const why = result.reason ? ` (${result.reason})` : '';
    this.#sink?.write(`\r\n\x1b[${colour}m[${what}${why}]\x1b[0m\r\n`);
  }

  #handle(data: string | ArrayBuffer): void {
    if (typeof data !== 'string') {
      const frame = decodeExecData(new Uint8Array(data));
      if (!frame || frame.id !== this.running?.id) return;
      this.#sink?.write(frame.payload);
      return;
    }
    const event = parseJsonFrame<ExecEvent>(data);
    if (!event) return;
    switch (event.cmd) {
      case 'ready':
        this.ptyAvailable = event.pty;
        this.allow = event.allow;
        break;
      case 'started':
        if (this.running?.id === event.id) {
          this.running.pid = event.pid;
          if (typeof event.stdinWindow === 'number' && event.stdinWindow > 0) this.#stdinWindow = event.stdinWindow;
        }
        break;
      case 'stdin-ack':
        if (this.running?.id === event.id) {
          this.#stdinWindow += event.bytes;
          this.#flushStdin();
        }
        break;
      case 'exit':
        if (this.running?.id === event.id) {
          this.#finish({ command: this.running.command, code: event.code, signal: event.signal, ...(event.reason ? { reason: event.reason } : {}) });
        }
        break;
      case 'error':
        this.lastError = { code: event.code, message: event.message };
        if (event.id && this.running?.id === event.id) {
          this.#sink?.write(`\r\n\x1b[31m${event.message} (${event.code})\x1b[0m\r\n`);
          this.running = null;
        }
        break;
      case 'stdout':
      case 'stderr':
        // bytes arrive as binary messages; a JSON announcement carries nothing to show
        break;
    }
  }
}
