// `sockbridge exec HOST:PORT [--secret-file F] [--tty | --data-connection] [--timeout-ms MS] -- PROGRAM ARGS…`
// `sockbridge exec HOST:PORT [--secret-file F] --shell 'a shell command'`
// Runs one command on an exec service, streams its output as it arrives, forwards this process's
// stdin, and exits with the command's exit code (128 + the signal number when a signal ended it,
// as a shell reports it). --data-connection carries stdout over a second connection the command
// writes into directly (bulk output at pipe speed; docs/protocol.md § exec, "Data connection").
import { constants } from 'node:os';
import { ExecClient, type ExecJob } from '../../../backends/exec/exec-client.js';
import { loadExecSecret, secretFileWarning } from '../../../backends/exec/secret.js';
import { isSockbridgeError, sbError } from '../../../protocol/errors.js';
import type { ExitEvent } from '../../../protocol/exec-messages.js';
import { parseCommandLine, parseHostPort } from '../args.js';

const USAGE =
  "sockbridge exec HOST:PORT [--secret-file FILE] [--tty | --data-connection] [--timeout-ms MS] -- PROGRAM [ARGS…]\n" +
  "       sockbridge exec HOST:PORT [--secret-file FILE] [--tty | --data-connection] --shell 'COMMAND STRING'\n" +
  '  --data-connection: stdout over a connection of its own, for bulk output (not with --tty)\n' +
  '  the secret may instead come from the environment variable SOCKBRIDGE_EXEC_SECRET';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, rest } = parseCommandLine(
    argv,
    { 'secret-file': { type: 'string' }, shell: { type: 'string' }, tty: { type: 'boolean' }, 'data-connection': { type: 'boolean' }, 'timeout-ms': { type: 'string' } },
    USAGE,
  );
  if (positionals.length !== 1) throw sbError('SB_ERR_USAGE', `expected one HOST:PORT${positionals.length > 1 ? ' (put the command after --)' : ''}\nusage: ${USAGE}`);
  const { host, port } = parseHostPort(positionals[0], USAGE, '127.0.0.1:7002');
  const shell = values['shell'] as string | undefined;
  if ((shell === undefined) === (rest.length === 0)) throw sbError('SB_ERR_USAGE', `give a command after -- or with --shell (not both)\nusage: ${USAGE}`);
  const timeoutMs = values['timeoutMs'] === undefined ? undefined : Number(values['timeoutMs']);
  if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs > 0)) throw sbError('SB_ERR_USAGE', `--timeout-ms must be a positive integer\nusage: ${USAGE}`);
  const tty = Boolean(values['tty']);
  const dataConnection = Boolean(values['dataConnection']);
  if (tty && dataConnection) throw sbError('SB_ERR_USAGE', `--data-connection cannot be combined with --tty (a terminal has one output)\nusage: ${USAGE}`);

  const loaded = await loadExecSecret(values['secretFile'] as string | undefined);
  const warning = secretFileWarning(loaded);
  if (warning) process.stderr.write(`sockbridge: ${warning}\n`);

  const client = await ExecClient.connect(host, port, loaded.secret);
  try {
    const job = client.run({
      ...(shell !== undefined ? { command: shell } : { argv: rest }),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      ...(tty ? { pty: true, cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 } : {}),
      ...(dataConnection ? { stdout: 'connection' as const } : {}),
    });
    const exit = await attach(client, job, tty);
    if (exit.reason && exit.reason !== 'cancelled') process.stderr.write(`sockbridge: command ended by the service: ${exit.reason}\n`);
    return exitCodeOf(exit);
  } catch (err) {
    // Shell conventions: 127 for a program that cannot be started, 126 for one that may not run.
    if (isSockbridgeError(err, 'SB_ERR_EXEC_SPAWN') || isSockbridgeError(err, 'SB_ERR_EXEC_NOT_ALLOWED')) {
      process.stderr.write(`sockbridge: ${err.message}\n`);
      return err.code === 'SB_ERR_EXEC_SPAWN' ? 127 : 126;
    }
    throw err;
  } finally {
    await client.close();
  }
}

/** Wires the job to this process's stdio, with backpressure both ways, until it exits. */
async function attach(client: ExecClient, job: ExecJob, tty: boolean): Promise<ExitEvent> {
  const { stdin, stdout, stderr } = process;
  // Output: a full stdout/stderr (a slow pipe) stops reading the connection until it drains.
  // A reader that went away (`… | head -1`: EPIPE) ends the command, as SIGPIPE would locally.
  let sinkGone = false;
  const onSinkError = () => {
    if (sinkGone) return;
    sinkGone = true;
    job.cancel('SIGTERM');
    client.resume(); // the rest of the output is discarded; a paused socket would also let the event loop end early
  };
  stdout.on('error', onSinkError);
  stderr.on('error', onSinkError);
  for (const [stream, sink] of [['stdout', stdout], ['stderr', stderr]] as const) {
    job.on(stream, (chunk) => {
      if (sinkGone) return;
      if (!sink.write(chunk)) {
        client.pause();
        sink.once('drain', () => client.resume());
      }
    });
  }
  // Input: everything this process reads goes to the command's stdin; EOF closes it.
  const raw = tty && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const onData = (chunk: Buffer) => {
    if (!job.write(chunk)) {
      stdin.pause();
      job.once('drain', () => stdin.resume());
    }
  };
  const onEnd = () => job.end();
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  stdin.on('error', () => job.end());
  // Signals: on a pty the terminal sends ^C as a byte; otherwise they are passed to the command.
  // A second one drops the connection, which kills the command even when the cancel frame is
  // stuck behind stdin the command does not read.
  let signalled = 0;
  const forward = (signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP') => () => (++signalled > 1 ? client.destroy() : job.cancel(signal));
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  const onResize = () => job.resize(stdout.columns || 80, stdout.rows || 24);
  if (tty) process.on('SIGWINCH', onResize);
  try {
    return await job.done;
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
    process.off('SIGWINCH', onResize);
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    stdin.unref?.();
    if (!sinkGone) await Promise.all([flush(stdout), flush(stderr)]);
  }
}

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => (stream.writableNeedDrain ? stream.once('drain', resolve) : resolve()));
}

/** The exit code a shell would give: the code, or 128 + the signal number. */
export function exitCodeOf(exit: Pick<ExitEvent, 'code' | 'signal'>): number {
  if (exit.code !== null) return exit.code;
  const n = exit.signal ? (constants.signals as Record<string, number>)[exit.signal] : undefined;
  return 128 + (n ?? 0);
}
