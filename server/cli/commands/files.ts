// `sockbridge put HOST:PORT FILE [NAME]`, `get HOST:PORT NAME [FILE]`, `ls HOST:PORT`.
// put hashes the local file first (so the service verifies every byte) and resumes on its own when
// the service keeps a partial upload whose prefix hash matches the local file. get resumes an
// interrupted download and renames it into place only once verified (resumable-download.ts). Progress goes to stderr, and
// only when stderr is a terminal; stdout carries one result line (or the ls table) for scripts.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileErrorReason, isSockbridgeError, sbError } from '../../../protocol/errors.js';
import type { FileEntry } from '../../../protocol/files-messages.js';
import { sanitizeForTerminal as clean } from '../../../backends/chat/terminal-text.js';
import { FilesClient } from '../../../backends/files/files-client.js';
import { validateFileName } from '../../../backends/files/file-name.js';
import { parseCommandLine, parseHostPort } from '../args.js';
import { formatBytes, progressBar } from '../progress-bar.js';
import { downloadResumable } from '../resumable-download.js';

const PUT_USAGE = 'sockbridge put HOST:PORT FILE [NAME]';
const GET_USAGE = 'sockbridge get [--no-resume] HOST:PORT NAME [FILE]';
const LS_USAGE = 'sockbridge ls HOST:PORT';
const FILES_EXAMPLE = '127.0.0.1:7003';

export async function put(argv: string[]): Promise<number> {
  const { positionals } = parseCommandLine(argv, {}, PUT_USAGE);
  const [target, file, nameArg, ...extra] = positionals;
  if (!file || extra.length > 0) throw sbError('SB_ERR_USAGE', `expected HOST:PORT FILE [NAME]\nusage: ${PUT_USAGE}`);
  const { host, port } = parseHostPort(target, PUT_USAGE, FILES_EXAMPLE);
  const name = checkName(nameArg ?? basename(file), PUT_USAGE);
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw sbError('SB_ERR_USAGE', `cannot read ${file}: ${fileErrorReason(err)}`);
  });
  if (!st.isFile()) throw sbError('SB_ERR_USAGE', `${file} is not a regular file`);

  const client = await FilesClient.connect(host, port);
  try {
    const remote = await client.stat(name).catch((err: unknown) => {
      if (isSockbridgeError(err, 'SB_ERR_FILE_NOT_FOUND')) return undefined;
      throw err;
    });
    const partial = remote?.partial; // checked by FilesClient.stat
    // One pass over the local file: the whole-file hash, and the prefix hash at the partial's size.
    const { sha256, prefixSha256 } = await hashFile(file, partial && partial.size <= st.size ? partial.size : undefined);
    const offset = partial && prefixSha256 === partial.sha256 ? partial.size : 0;
    if (offset > 0) process.stderr.write(`resuming ${name} at ${formatBytes(offset)} of ${formatBytes(st.size)}\n`);
    const progress = progressBar(`put ${name}`, st.size, offset);
    const entry = await client.put(name, createReadStream(file, { start: offset }), st.size - offset, {
      sha256,
      offset,
      onProgress: (sent) => progress.update(offset + sent),
    }).catch((err: unknown) => {
      progress.stop();
      throw err;
    });
    progress.done();
    process.stdout.write(resultLine(entry));
    return 0;
  } finally {
    await client.close();
  }
}

export async function get(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(argv, { 'no-resume': { type: 'boolean' } }, GET_USAGE);
  const [target, name, fileArg, ...extra] = positionals;
  if (!name || extra.length > 0) throw sbError('SB_ERR_USAGE', `expected HOST:PORT NAME [FILE]\nusage: ${GET_USAGE}`);
  const { host, port } = parseHostPort(target, GET_USAGE, FILES_EXAMPLE);
  checkName(name, GET_USAGE);
  // Like cp: a directory as FILE means "into it, under NAME".
  const file = fileArg === undefined ? name : (await stat(fileArg).then((st) => st.isDirectory(), () => false)) ? join(fileArg, name) : fileArg;
  // Checked before connecting, so a typo in FILE is one line naming it, not a failure to create the lock beside it.
  await access(dirname(file), constants.W_OK).catch((err: NodeJS.ErrnoException) => {
    throw sbError('SB_ERR_USAGE', `cannot write ${file}: ${err.code === 'ENOENT' ? `no directory ${dirname(file)}` : fileErrorReason(err)}`);
  });

  const entry = await downloadResumable({ host, port, name, file, resume: values['noResume'] !== true });
  process.stdout.write(resultLine(entry));
  return 0;
}

export async function ls(argv: string[]): Promise<number> {
  const { positionals } = parseCommandLine(argv, {}, LS_USAGE);
  const [target, ...extra] = positionals;
  if (extra.length > 0) throw sbError('SB_ERR_USAGE', `expected HOST:PORT\nusage: ${LS_USAGE}`);
  const { host, port } = parseHostPort(target, LS_USAGE, FILES_EXAMPLE);
  const client = await FilesClient.connect(host, port);
  try {
    // FilesClient.list checked each entry; formatTable still cleans what reaches the terminal.
    process.stdout.write(formatTable(await client.list()));
    return 0;
  } finally {
    await client.close();
  }
}

/** A NAME the service would refuse is a usage error here: caught before connecting, exit code 2. */
function checkName(name: string, usage: string): string {
  try {
    return validateFileName(name);
  } catch (err) {
    throw sbError('SB_ERR_USAGE', `${(err as Error).message}\nusage: ${usage}`);
  }
}

/** put's and get's one line on stdout: `NAME<TAB>SIZE<TAB>SHA256`, every field as the service reported it, made safe to print. */
function resultLine(entry: FileEntry): string {
  return `${clean(entry.name)}\t${clean(String(entry.size))}\t${clean(entry.sha256)}\n`;
}

/**
 * `SIZE  MTIME  SHA256  NAME`, sizes right-aligned; names are JSON-quoted only if they need it.
 * Every column is the service's word: none reaches the terminal with a control character in it.
 */
export function formatTable(files: readonly FileEntry[]): string {
  const rows = files.map((f) => [clean(String(f.size)), new Date(f.mtime).toISOString().replace(/\.\d+Z$/, 'Z'), clean(f.sha256), displayName(f.name)] as const);
  const width = Math.max(4, ...rows.map((r) => r[0].length));
  const lines = [`${'SIZE'.padStart(width)}  ${'MTIME'.padEnd(20)}  ${'SHA256'.padEnd(64)}  NAME`];
  for (const [size, mtime, sha, name] of rows) lines.push(`${size.padStart(width)}  ${mtime.padEnd(20)}  ${sha}  ${name}`);
  return `${lines.join('\n')}\n`;
}

const displayName = (name: string) => (/^[\x21-\x7e\u00a0-\uffff]+$/.test(name) && !name.includes('"') ? name : quoted(name));
/** JSON.stringify escapes C0 but leaves DEL and C1 raw (8-bit CSI 0x9B acts like ESC [): those are escaped too. */
const quoted = (name: string) => JSON.stringify(name).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

async function hashFile(file: string, prefixBytes: number | undefined): Promise<{ sha256: string; prefixSha256?: string }> {
  const hash = createHash('sha256');
  let seen = 0;
  let prefixSha256 = prefixBytes === 0 ? hash.copy().digest('hex') : undefined;
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    const buf = chunk as Buffer;
    if (prefixBytes !== undefined && prefixSha256 === undefined && seen + buf.length >= prefixBytes) {
      const cut = prefixBytes - seen;
      hash.update(buf.subarray(0, cut));
      prefixSha256 = hash.copy().digest('hex');
      hash.update(buf.subarray(cut));
    } else {
      hash.update(buf);
    }
    seen += buf.length;
  }
  return { sha256: hash.digest('hex'), ...(prefixSha256 !== undefined ? { prefixSha256 } : {}) };
}
