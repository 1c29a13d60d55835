// Secrets `sockbridge start` shares between the gateway and its backends: generated once (256 random
// bits, hex) into files created with mode 0600 and never overwritten, so a restart keeps them.

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The secret in `path`, creating the file (0600, exclusive) when it does not exist yet. */
export async function ensureSecretFile(path: string): Promise<string> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, `${randomBytes(32).toString('hex')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return (await readFile(path, 'utf8')).trim();
}
