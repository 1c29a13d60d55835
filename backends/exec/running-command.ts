// One command started by the exec service: a child in its own process group (pipes), or a
// session leader on a pseudo-terminal (node-pty), behind one small interface, so the session
// can stream, pause, feed, resize and kill either kind the same way.
//
// Killing targets the whole process group (kill(-pid)): `sh -c 'sleep 100 & wait'` leaves no
// orphan. The exit is reported once the main process has exited **and** its output is drained,
// so the last bytes always precede the exit event; a background process that keeps the pipes open
// after the main process exited gets `lingerMs` before the pipes are cut. A data connection
// (options.stdout) is shut down when the exit is reported, even if such a process still holds it.

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import type net from 'node:net';
import { constants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import * as nodePty from 'node-pty';
import type { ExitEvent } from '../../protocol/exec-messages.js';
import { sbError } from '../../protocol/errors.js';
import { whyNotExecutable } from './find-executable.js';
import type { Program } from './program-policy.js';

export type ExitReason = NonNullable<ExitEvent['reason']>;
export type OutputStream = 'stdout' | 'stderr';
export type KillSignal = 'SIGINT' | 'SIGTERM' | 'SIGKILL' | 'SIGHUP';

export interface CommandExit {
  code: number | null;
  signal: string | null;
  reason?: ExitReason;
}

export interface RunningCommandOptions {
  env: Record<string, string>;
  cwd: string;
  /** run on a pseudo-terminal of cols × rows (output all on stdout) */
  pty?: { cols: number; rows: number } | undefined;
  timeoutMs: number;
  maxOutputBytes: number;
  /** SIGTERM → SIGKILL escalation delay */
  killGraceMs: number;
  /** how long pipes may stay open (held by a background process) after the main process exited */
  lingerMs: number;
  /**
   * A connected socket to be the child's stdout (not with pty): the child gets its fd, so stdout
   * never passes through here and is neither counted against maxOutputBytes nor paused by pause().
   * Once start() returned, the command owns it and ends it when it finishes.
   */
  stdout?: net.Socket | undefined;
}

export interface RunningCommand {
  on(event: 'output', listener: (stream: OutputStream, chunk: Buffer) => void): this;
  on(event: 'exit', listener: (exit: CommandExit) => void): this;
  on(event: 'drain', listener: () => void): this;
}

const signalNames = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

export class RunningCommand extends EventEmitter {
  readonly pid: number;
  private readonly options: RunningCommandOptions;
  private readonly child: ChildProcessByStdio<Writable, Readable | null, Readable> | undefined;
  private readonly terminal: nodePty.IPty | undefined;
  private outputBytes = 0;
  private reason: ExitReason | undefined;
  private exited = false;
  private paused = false;
  private ptySlaveFd: number | undefined;
  /** our own handle of the data connection (options.stdout), kept to end it when the command finishes */
  private dataConnection: net.Socket | undefined;
  private finished = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  /** Starts the program; throws SB_ERR_EXEC_SPAWN when it cannot be started. */
  static start(program: Program, options: RunningCommandOptions): RunningCommand {
    return new RunningCommand(program, options);
  }

  private constructor(program: Program, options: RunningCommandOptions) {
    super();
    this.options = options;
    const name = JSON.stringify(program.file.slice(0, 256));
    const unrunnable = whyNotExecutable(program.file, options.env['PATH'] ?? '', options.cwd);
    if (unrunnable) throw sbError('SB_ERR_EXEC_SPAWN', name, unrunnable);
    if (options.pty) {
      // node-pty makes the child a session leader (setsid), so its pid is also its process group.
      try {
        this.terminal = nodePty.spawn(program.file, program.args, {
          name: 'xterm-256color',
          cols: options.pty.cols,
          rows: options.pty.rows,
          cwd: options.cwd,
          env: options.env,
          encoding: null,
        });
      } catch (err) {
        throw sbError('SB_ERR_EXEC_SPAWN', name, (err as Error).message);
      }
      this.pid = this.terminal.pid;
      this.holdPtySlave();
      this.terminal.onData((data: string | Buffer) => this.output('stdout', typeof data === 'string' ? Buffer.from(data) : data));
      this.terminal.onExit(({ exitCode, signal }) => {
        this.exited = true;
        this.releasePtySlave();
        this.finish({ code: signal ? null : exitCode, signal: signal ? (signalNames.get(signal) ?? String(signal)) : null });
      });
    } else {
      // detached: the child leads a new process group, which cancel and timeout kill as a whole.
      const child = spawn(program.file, program.args, {
        cwd: options.cwd,
        env: options.env,
        detached: true,
        stdio: ['pipe', options.stdout ?? 'pipe', 'pipe'],
      }) as ChildProcessByStdio<Writable, Readable | null, Readable>;
      if (child.pid === undefined) {
        // libuv failed to exec although the look-up passed (a race, ENOEXEC…); the errno comes on a later tick.
        child.once('error', () => {});
        throw sbError('SB_ERR_EXEC_SPAWN', name, 'no such program, or not executable');
      }
      this.child = child;
      this.pid = child.pid;
      this.dataConnection = options.stdout;
      child.on('error', () => {}); // only kill() failures come here once spawned; the group kill covers them
      child.stdout?.on('data', (chunk: Buffer) => this.output('stdout', chunk));
      child.stderr.on('data', (chunk: Buffer) => this.output('stderr', chunk));
      // EPIPE when the program exits without reading its stdin: nothing to report.
      child.stdin.on('error', () => {});
      child.stdin.on('drain', () => this.emit('drain'));
      child.once('exit', () => {
        this.exited = true;
        this.cutPipesWhenIdle();
      });
      child.once('close', (code, signal) => this.finish({ code, signal }));
    }
    this.later(options.timeoutMs, () => this.terminate('timeout'));
  }

  /**
   * node-pty drops the tail of the output of a program that exits quickly (microsoft/node-pty#72,
   * #85): when the last slave fd closes, reading the master fails with EIO while bytes are still
   * queued. Holding a slave fd open here until the exit has been seen (node-pty reports it once its
   * socket has been drained or after 200 ms) lets those bytes be read first.
   */
  private holdPtySlave(): void {
    const slave = (this.terminal as unknown as { ptsName?: string }).ptsName;
    if (!slave) return;
    try {
      this.ptySlaveFd = openSync(slave, fsConstants.O_RDWR | fsConstants.O_NOCTTY);
    } catch {
      // Without it the program still runs; only a fast exit may lose its last bytes.
    }
  }

  private releasePtySlave(): void {
    if (this.ptySlaveFd === undefined) return;
    closeSync(this.ptySlaveFd);
    this.ptySlaveFd = undefined;
  }

  get running(): boolean {
    return !this.finished;
  }

  /**
   * Feeds stdin. `written` runs once the bytes left our buffer (or were dropped because the
   * command is gone), so the sender can be given credit for them.
   */
  write(chunk: Buffer, written: () => void): void {
    if (this.finished || this.terminal === undefined && !this.child!.stdin.writable) {
      queueMicrotask(written);
      return;
    }
    if (this.terminal) {
      // node-pty writes synchronously into the kernel's buffer: nothing is held here.
      this.terminal.write(chunk);
      queueMicrotask(written);
      return;
    }
    this.child!.stdin.write(chunk, () => written());
  }

  /** Stdin bytes accepted but not yet taken by the command's pipe. */
  get pendingInput(): number {
    return this.child?.stdin.writableLength ?? 0;
  }

  /** Closes stdin; on a terminal, sends the EOF character (^D) as a keyboard would. */
  endInput(): void {
    if (this.finished) return;
    if (this.terminal) this.terminal.write('\x04');
    else this.child!.stdin.end();
  }

  resize(cols: number, rows: number): void {
    if (this.terminal && !this.finished) this.terminal.resize(cols, rows);
  }

  /**
   * After the main process exited, pipes still open are held by something it left behind. They are
   * cut after `lingerMs`, but never while paused: bytes waiting in the pipe for a slow client are
   * output too, and must not be lost.
   */
  private cutPipesWhenIdle(): void {
    this.later(this.options.lingerMs, () => {
      if (this.paused) return this.cutPipesWhenIdle();
      this.child!.stdout?.destroy();
      this.child!.stderr.destroy();
    });
  }

  pause(): void {
    this.paused = true;
    if (this.terminal) this.terminal.pause();
    else {
      this.child!.stdout?.pause();
      this.child!.stderr.pause();
    }
  }

  resume(): void {
    this.paused = false;
    if (this.terminal) this.terminal.resume();
    else {
      this.child!.stdout?.resume();
      this.child!.stderr.resume();
    }
  }

  /**
   * Ends the command and its whole process group. With a signal, sends just that one;
   * without, SIGTERM and then SIGKILL after the grace period if anything is left.
   */
  terminate(reason: ExitReason, signal?: KillSignal): void {
    if (this.finished) return;
    this.reason ??= reason;
    if (signal) {
      this.killGroup(signal);
      return;
    }
    this.killGroup('SIGTERM');
    this.later(this.options.killGraceMs, () => this.killGroup('SIGKILL'));
  }

  private killGroup(signal: KillSignal): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
    // The pty's own fd must be closed too, or a program ignoring the signal keeps it open.
    if (signal === 'SIGKILL' && this.terminal && this.exited) this.terminal.kill('SIGKILL');
  }

  private output(stream: OutputStream, chunk: Buffer): void {
    if (this.finished || this.reason === 'output-limit') return;
    const room = this.options.maxOutputBytes - this.outputBytes;
    if (chunk.length > room) {
      if (room > 0) this.emit('output', stream, chunk.subarray(0, room));
      this.outputBytes = this.options.maxOutputBytes;
      this.terminate('output-limit', 'SIGKILL');
      return;
    }
    this.outputBytes += chunk.length;
    this.emit('output', stream, chunk);
  }

  private finish(exit: CommandExit): void {
    if (this.finished) return;
    this.finished = true;
    this.releasePtySlave();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    // Whatever the group left behind goes with it, as a terminal hangup would take it: a command
    // must not leave processes running after its exit was reported (one that calls setsid()
    // leaves the group on purpose, and is beyond reach).
    this.killGroup('SIGKILL');
    this.endDataConnection();
    this.emit('exit', this.reason ? { ...exit, reason: this.reason } : exit);
  }

  /**
   * The data connection must end with the command, as its pipes do: closing our fd is not enough
   * when a process that left the group (setsid) still holds a copy, and the client would wait for
   * EOF forever. shutdown(SHUT_WR), which end() issues, acts on the connection rather than on one
   * fd: the peer gets FIN after every byte already written, and that process's later writes fail
   * (EPIPE), as they would on a cut pipe.
   */
  private endDataConnection(): void {
    const socket = this.dataConnection;
    this.dataConnection = undefined;
    socket?.destroySoon();
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }
}
