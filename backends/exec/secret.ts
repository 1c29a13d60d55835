// The exec port is a remote shell: its shared secret is compared in constant time. Both sides are
// hashed first so timingSafeEqual sees equal lengths and the comparison leaks neither the content
// nor the length of the secret.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { fileErrorReason, sbError } from '../../protocol/errors.js';

export const MIN_SECRET_LENGTH = 16;

export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

export interface SecretFile {
  secret: string;
  /** set when group or others may read the file: the caller warns */
  worldReadable: boolean;
}

/** Reads a secret file (one line; surrounding whitespace dropped). */
export async function readSecretFile(path: string): Promise<SecretFile> {
  let text: string;
  let mode: number;
  try {
    [text, mode] = await Promise.all([readFile(path, 'utf8'), stat(path).then((s) => s.mode)]);
  } catch (err) {
    throw sbError('SB_ERR_SECRET_FILE', path, fileErrorReason(err));
  }
  const secret = text.trim();
  if (secret.length < MIN_SECRET_LENGTH) {
    throw sbError('SB_ERR_CONFIG_INVALID', `the secret in ${path} must be at least ${MIN_SECRET_LENGTH} characters (e.g. \`openssl rand -hex 32 > ${path}\`)`);
  }
  return { secret, worldReadable: (mode & 0o077) !== 0 };
}

export const SECRET_ENV = 'SOCKBRIDGE_EXEC_SECRET';

/** The secret for `serve exec` and `exec`: from the file when given, else from SOCKBRIDGE_EXEC_SECRET. */
export async function loadExecSecret(secretFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<SecretFile & { source: string }> {
  if (secretFile) return { ...(await readSecretFile(secretFile)), source: secretFile };
  const secret = env[SECRET_ENV]?.trim();
  if (!secret) throw sbError('SB_ERR_USAGE', `give the exec secret with --secret-file FILE or the environment variable ${SECRET_ENV}`);
  if (secret.length < MIN_SECRET_LENGTH) throw sbError('SB_ERR_CONFIG_INVALID', `${SECRET_ENV} must be at least ${MIN_SECRET_LENGTH} characters`);
  return { secret, worldReadable: false, source: SECRET_ENV };
}

/** The warning a CLI prints for a secret file others can read. */
export function secretFileWarning(loaded: SecretFile & { source: string }): string | undefined {
  return loaded.worldReadable ? `warning: ${loaded.source} is readable by other users; run \`chmod 600 ${loaded.source}\`` : undefined;
}
