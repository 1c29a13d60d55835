// The exec service's client, used by `sockbridge exec` and by the gateway's /ws/exec. One
// connection carries many jobs; each ExecJob is an EventEmitter of its own output and exit.
// Backpressure: job.write() returns false when the job's stdin window (see StartedEvent) or the
// socket is full ('drain' follows), and pause()/resume() stop reading the connection (so the
// service pauses the commands in turn).

import { EventEmitter } from 'node:events';
import net from 'node:net';
import { EXEC_SIGNALS, type ExitEvent, type ReadyEvent, type RunRequest } from '../../protocol/exec-messages.js';
import { errorFromFrame, sbError } from '../../protocol/errors.js';
import { encodeFrame, encodeFrameHead, FrameDecoder, type FrameHeader } from '../../protocol/frame-codec.js';
import { openDataConnection, type ExecEndpoint } from './data-connection.js';
import { endSocket } from '../lib/end-socket.js';

export type RunOptions = Omit<RunRequest, 'cmd' | 'id'> & { id?: string };
export type CancelSignal = (typeof EXEC_SIGNALS)[number];

/** Output frames from the service are bounded by the pipe reads that made them; this is a safety net. */
const MAX_OUTPUT_FRAME_BYTES = 16 * 1024 * 1024;

export interface ExecJob {
  on(event: 'started', listener: (pid: number) => void): this;
  on(event: 'stdout' | 'stderr', listener: (chunk: Buffer) => void): this;
  on(event: 'exit', listener: (exit: ExitEvent) => void): this;
  on(event: 'drain', listener: () => void): this;
}

export class ExecJob extends EventEmitter {
  /** Resolves with the exit event; rejects with a SockbridgeError when the run is refused or the connection is lost. */
  readonly done: Promise<ExitEvent>;
  pid: number | undefined;
  private settle!: { resolve(exit: ExitEvent): void; reject(err: Error): void };

  constructor(readonly id: string, private readonly client: ExecClient) {
    super();
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {}); // a caller that only listens to events must not get an unhandled rejection
  }

  // Stdin flow control: at most `window` bytes sent and not yet acknowledged; the rest waits here
  // (bounded by callers that wait for 'drain' when write() says false). Until `started` tells the
  // window, everything waits; a service that announces none gets no limit.
  private window = 0;
  private inFlight = 0;
  private readonly queue: Buffer[] = [];
  private endPending = false;

  /** Sends stdin bytes; false means wait for 'drain'. */
  write(data: Uint8Array | string): boolean {
    const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length > 0 && !this.endPending) this.queue.push(bytes);
    return this.flush();
  }

  /** Closes the command's stdin (on a pty: sends ^D) once everything written before has been sent. */
  end(): void {
    this.endPending = true;
    this.flush();
  }

  /** @internal the service's `started` */
  onStarted(pid: number, stdinWindow: unknown): void {
    this.pid = pid;
    this.window = typeof stdinWindow === 'number' && stdinWindow > 0 ? stdinWindow : Infinity;
    this.emit('started', pid);
    if (this.flush()) this.emit('drain');
  }

  /** @internal the service's `stdin-ack` */
  onAck(bytes: number): void {
    this.inFlight = Math.max(0, this.inFlight - bytes);
    if (this.queue.length > 0 && this.flush()) this.emit('drain');
  }

  /** @internal the connection drained */
  onSocketDrain(): void {
    if (this.queue.length === 0) this.emit('drain');
  }

  /** Sends what the window allows; true when nothing waits (here or in the socket). */
  private flush(): boolean {
    let socketOk = true;
    while (this.queue.length > 0 && this.inFlight < this.window) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, this.window - this.inFlight);
      socketOk = this.client.sendFrame({ cmd: 'stdin', id: this.id }, head.subarray(0, n));
      this.inFlight += n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    if (this.queue.length > 0) return false;
    if (this.endPending && this.window > 0) {
      this.endPending = false;
      this.client.sendFrame({ cmd: 'stdin', id: this.id, eof: true });
    }
    return socketOk && !this.client.writeBlocked;
  }

  resize(cols: number, rows: number): void {
    this.client.sendFrame({ cmd: 'resize', id: this.id, cols, rows });
  }

  cancel(signal?: CancelSignal): void {
    this.client.sendFrame(signal ? { cmd: 'cancel', id: this.id, signal } : { cmd: 'cancel', id: this.id });
  }

  // stdout: 'connection': stdout arrives on a socket of its own, and the exit on the control
  // connection may overtake its last bytes, so the exit is held until the data connection ended.
  private dataSocket: net.Socket | undefined;
  private heldExit: ExitEvent | undefined;
  private ended = false;

  /** @internal the data connection attached: its bytes are this job's stdout */
  onDataConnection(socket: net.Socket, head: Buffer): void {
    if (this.ended) {
      socket.destroy();
      return;
    }
    this.dataSocket = socket;
    if (head.length > 0) this.emit('stdout', head);
    socket.on('data', (chunk: Buffer) => this.emit('stdout', chunk));
    // ECONNRESET and the like: the exit (or the control connection's loss) still ends the job.
    socket.on('error', () => {});
    socket.once('close', () => {
      this.dataSocket = undefined;
      if (this.heldExit) this.finish(this.heldExit);
    });
    if (!this.client.readPaused) socket.resume();
  }

  /** @internal */
  pauseData(): void {
    this.dataSocket?.pause();
  }

  /** @internal */
  resumeData(): void {
    this.dataSocket?.resume();
  }

  /** @internal */
  finish(exit: ExitEvent): void {
    if (this.ended) return;
    if (this.dataSocket) {
      this.heldExit = exit;
      return;
    }
    this.ended = true;
    this.emit('exit', exit);
    this.settle.resolve(exit);
  }

  /** @internal */
  fail(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.dataSocket?.destroy();
    this.emit('failed', err);
    this.settle.reject(err);
  }
}

export class ExecClient {
  /** what the service said on `ready`: its allow-list (null = any command) and whether pty runs are allowed */
  ready!: ReadyEvent;
  private readonly jobs = new Map<string, ExecJob>();
  private readonly decoder = new FrameDecoder({ maxBodyBytes: (h) => (h.cmd === 'stdout' || h.cmd === 'stderr' ? MAX_OUTPUT_FRAME_BYTES : 0) });
  private bodyTarget: { job: ExecJob; stream: 'stdout' | 'stderr' } | undefined;
  private nextId = 1;
  private closedWith: Error | undefined;
  /** Resolves when the connection is gone, for whatever reason (the gateway marks the service down). */
  readonly closed: Promise<void>;

  /** @internal true while pause() holds the output */
  readPaused = false;

  private constructor(
    private readonly socket: net.Socket,
    private readonly endpoint: ExecEndpoint,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('drain', () => {
      for (const job of this.jobs.values()) job.onSocketDrain();
    });
  }

  /** Connects and authenticates; resolves once the service answered `ready`. */
  static connect(host: string, port: number, secret: string, options: { timeoutMs?: number } = {}): Promise<ExecClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port, noDelay: true });
      const client = new ExecClient(socket, { host, port, secret });
      const timer = setTimeout(() => fail(sbError('SB_ERR_TIMEOUT', options.timeoutMs ?? 10_000, `connecting to exec at ${host}:${port}`)), options.timeoutMs ?? 10_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once('error', (err: NodeJS.ErrnoException) => fail(sbError('SB_ERR_CONNECT', `${host}:${port}`, err.code ?? err.message)));
      socket.once('connect', () => socket.write(encodeFrame({ cmd: 'auth', secret })));
      client.onReady = (err) => {
        if (err) return fail(err);
        clearTimeout(timer);
        socket.removeAllListeners('error');
        socket.on('error', (e) => client.abort(sbError('SB_ERR_CONNECT', `${host}:${port}`, (e as NodeJS.ErrnoException).code ?? e.message)));
        resolve(client);
      };
      socket.on('data', (chunk: Buffer) => client.receive(chunk));
      socket.once('close', () => {
        const err = client.closedWith ?? sbError('SB_ERR_CONNECT', `${host}:${port}`, 'connection closed');
        if (client.onReady) fail(err);
        client.abort(err);
      });
    });
  }

  private onReady: ((err?: Error) => void) | undefined;

  /** Starts a command. Events arrive on the returned job. */
  run(request: RunOptions): ExecJob {
    if (this.closedWith || this.socket.destroyed) throw this.closedWith ?? sbError('SB_ERR_CONNECT', 'exec', 'connection closed');
    const id = request.id ?? `job-${this.nextId++}`;
    if (this.jobs.has(id)) throw sbError('SB_ERR_EXEC_DUPLICATE_ID', id);
    const job = new ExecJob(id, this);
    this.jobs.set(id, job);
    this.sendFrame({ ...request, cmd: 'run', id });
    return job;
  }

  /** Stops reading the connection and the data connections (every job's output waits, and the service pauses the commands). */
  pause(): void {
    this.readPaused = true;
    this.socket.pause();
    for (const job of this.jobs.values()) job.pauseData();
  }

  resume(): void {
    this.readPaused = false;
    this.socket.resume();
    for (const job of this.jobs.values()) job.resumeData();
  }

  /** Drops the connection at once (the service kills whatever still runs); pending jobs fail with SB_ERR_CONNECT. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Closes the connection: the service kills whatever still runs. */
  async close(): Promise<void> {
    await endSocket(this.socket, 2000);
    await this.closed;
  }

  /** @internal true while the socket's buffer is over its high-water mark */
  get writeBlocked(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** @internal */
  sendFrame(header: { cmd: string; [key: string]: unknown }, body?: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return true;
    if (!body) return this.socket.write(encodeFrame(header));
    this.socket.cork();
    this.socket.write(encodeFrameHead(header, body.length));
    const ok = this.socket.write(body);
    this.socket.uncork();
    return ok;
  }

  private receive(chunk: Buffer): void {
    try {
      for (const event of this.decoder.push(chunk)) {
        if (event.type === 'header') this.onHeader(event.header);
        else if (event.type === 'body') {
          // Not copied: it is a slice of the chunk this socket read, which node never reuses.
          if (this.bodyTarget) this.bodyTarget.job.emit(this.bodyTarget.stream, event.chunk);
        } else this.bodyTarget = undefined;
      }
    } catch (err) {
      this.closedWith = err as Error;
      this.socket.destroy();
    }
  }

  private onHeader(header: FrameHeader): void {
    const id = typeof header['id'] === 'string' ? header['id'] : undefined;
    const job = id === undefined ? undefined : this.jobs.get(id);
    switch (header.cmd) {
      case 'ready':
        this.ready = header as unknown as ReadyEvent;
        this.onReady?.();
        this.onReady = undefined;
        return;
      case 'data-token':
        if (job && typeof header['dataToken'] === 'string') this.attachData(job, header['dataToken']);
        return;
      case 'started':
        job?.onStarted(Number(header['pid']), header['stdinWindow']);
        return;
      case 'stdin-ack':
        if (job && typeof header['bytes'] === 'number') job.onAck(header['bytes']);
        return;
      case 'stdout':
      case 'stderr':
        this.bodyTarget = job ? { job, stream: header.cmd } : undefined;
        return;
      case 'exit':
        if (job) {
          this.jobs.delete(job.id);
          job.finish(header as unknown as ExitEvent);
        }
        return;
      case 'error': {
        const err = errorFromFrame(header, 'exec service error');
        if (job) {
          // A refused run never started: the job ends here. Other per-id errors (e.g. stdin after exit) are informational.
          if (job.pid === undefined) {
            this.jobs.delete(job.id);
            job.fail(err);
          }
        } else if (id === undefined) {
          // Not about one job: the service is closing the connection.
          this.closedWith = err;
          this.onReady?.(err);
          this.onReady = undefined;
        }
        return;
      }
    }
  }

  /** Opens the job's data connection; if that fails, the job fails with why and the run is cancelled. */
  private attachData(job: ExecJob, token: string): void {
    openDataConnection(this.endpoint, token).then(
      ({ socket, head }) => job.onDataConnection(socket, head),
      (err: Error) => {
        if (this.jobs.get(job.id) !== job) return;
        this.jobs.delete(job.id);
        this.sendFrame({ cmd: 'cancel', id: job.id });
        job.fail(err);
      },
    );
  }

  private abort(err: Error): void {
    this.closedWith ??= err;
    for (const job of this.jobs.values()) job.fail(this.closedWith);
    this.jobs.clear();
  }
}
