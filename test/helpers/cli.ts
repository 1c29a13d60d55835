// Runs the real CLI (bin/sockbridge → dist/, built by `npm run build:server`) as a child process.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

export const SOCKBRIDGE_BIN = fileURLToPath(new URL('../../bin/sockbridge', import.meta.url));

export interface CliProcess {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of `pattern` in stdout (or stderr), rejects if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or 128 + signal number). */
  exited: Promise<number>;
  stop(signal?: NodeJS.Signals): Promise<number>;
}

const running = new Set<CliProcess>();

export function startCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string | Buffer } = {}): CliProcess {
  const child = spawn(process.execPath, [SOCKBRIDGE_BIN, ...args], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: 'pipe',
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  if (options.input !== undefined) child.stdin.end(options.input);
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + constants.signals[signal] : 1)));
  });
  const proc: CliProcess = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern) ?? err.match(pattern);
          if (m) {
            cleanup();
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; stdout: ${out}\nstderr: ${err}`));
        }, timeoutMs);
        const onExit = () => {
          check();
          cleanup();
          reject(new Error(`process exited before ${pattern}; stdout: ${out}\nstderr: ${err}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          child.stdout.off('data', check);
          child.stderr.off('data', check);
          child.off('exit', onExit);
        };
        child.stdout.on('data', check);
        child.stderr.on('data', check);
        child.once('exit', onExit);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const code = await exited;
      clearTimeout(timer);
      running.delete(proc);
      return code;
    },
  };
  running.add(proc);
  return proc;
}

/** Runs a command to completion. */
export async function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string | Buffer; timeoutMs?: number } = {}) {
  const proc = startCli(args, options);
  if (options.input === undefined) proc.child.stdin.end();
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
  const code = await proc.exited;
  clearTimeout(timer);
  running.delete(proc);
  return { code, stdout: proc.stdout(), stderr: proc.stderr() };
}

/** Call from afterEach: stops every CLI process a test left running. */
export async function stopAllCli(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}
