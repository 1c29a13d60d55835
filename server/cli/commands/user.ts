// `sockbridge user add|remove|passwd NAME [--role admin|user] [--password-stdin] [--data DIR]`:
// manages DATA/users.sqlite. The password is read from stdin with --password-stdin (scripts, tests),
// else prompted twice on the terminal without echo. It is never taken from a flag: command lines
// show up in `ps` and shell history.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isSockbridgeError, sbError } from '../../../protocol/errors.js';
import type { Role } from '../../../protocol/api.js';
import { UserStore, validateRole, validateUsername } from '../../accounts/user-store.js';
import { parseCommandLine } from '../args.js';

const USAGE = 'sockbridge user add|remove|passwd|role|list [NAME] [--role admin|user] [--password-stdin] [--data DIR]';
const ACTIONS = ['add', 'remove', 'passwd', 'role', 'list'];

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // one line: a trailing newline (echo, here-strings) is not part of the password
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Reads a line from the terminal without echoing it. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    if (!stdin.isTTY) return reject(sbError('SB_ERR_USAGE', 'no terminal to prompt on; pass the password with --password-stdin'));
    // echo off before the prompt appears, so nothing typed right after it is shown
    stdin.setRawMode(true);
    process.stderr.write(question);
    stdin.resume();
    stdin.setEncoding('utf8');
    let text = '';
    const onData = (data: string) => {
      for (const ch of data) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off('data', onData);
          process.stderr.write('\n');
          return resolve(text);
        }
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          process.stderr.write('\n');
          return reject(sbError('SB_ERR_USAGE', 'cancelled'));
        }
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) return readStdin();
  const first = await promptHidden('password: ');
  const second = await promptHidden('again: ');
  if (first !== second) throw sbError('SB_ERR_USAGE', 'the two passwords differ');
  return first;
}

/** A bad NAME or --role is a bad argument: one line and exit code 2, as every other usage error. */
function asUsageError(check: () => void): void {
  try {
    check();
  } catch (err) {
    if (isSockbridgeError(err, 'SB_ERR_USER_INVALID')) throw sbError('SB_ERR_USAGE', err.message);
    throw err;
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(
    argv,
    { role: { type: 'string' }, 'password-stdin': { type: 'boolean' }, data: { type: 'string' } },
    USAGE,
  );
  const [action = '', name = ''] = positionals;
  const data = typeof values['data'] === 'string' ? values['data'] : './data';
  const role = values['role'] as Role | undefined;
  // Checked before the store is opened (which creates DATA) and before a password is prompted for.
  if (!ACTIONS.includes(action)) throw sbError('SB_ERR_USAGE', `${action ? `unknown action "${action}"` : 'which action?'}\nusage: ${USAGE}`);
  if (role !== undefined) asUsageError(() => validateRole(role));
  if (action !== 'list' && !name) throw sbError('SB_ERR_USAGE', `missing NAME\nusage: ${USAGE}`);
  if (action === 'role' && !role) throw sbError('SB_ERR_USAGE', `usage: sockbridge user role NAME --role admin|user`);
  // A name no account can have is a typo in the command line, for remove and passwd as much as add.
  if (action !== 'list') asUsageError(() => validateUsername(name));
  const database = join(data, 'users.sqlite');
  // Opening creates DATA and the database: only `add` may, so a mistyped --data is reported, not
  // answered with an empty list (or "no user named …") and a stray new database left behind.
  if (action !== 'add' && !existsSync(database)) throw sbError('SB_ERR_ACCOUNTS_MISSING', database);
  const store = new UserStore(database);
  try {
    switch (action) {
      case 'add': {
        const password = await readPassword(values['passwordStdin'] === true);
        await store.add(name, password, role ?? 'user');
        process.stdout.write(`sockbridge: added ${role ?? 'user'} ${name}\n`);
        return 0;
      }
      case 'remove':
        store.remove(name);
        process.stdout.write(`sockbridge: removed ${name} (a running gateway ends its sessions and closes their sockets within seconds)\n`);
        return 0;
      case 'passwd': {
        if (!store.get(name)) throw sbError('SB_ERR_USER_NOT_FOUND', name);
        await store.passwd(name, await readPassword(values['passwordStdin'] === true));
        if (role) store.setRole(name, role);
        process.stdout.write(`sockbridge: changed the password of ${name} (a running gateway ends the sessions made with the old one within seconds)\n`);
        return 0;
      }
      case 'role':
        store.setRole(name, role!);
        process.stdout.write(`sockbridge: ${name} is now ${role}\n`);
        return 0;
      case 'list':
        for (const account of store.list()) process.stdout.write(`${account.username}\t${account.role}\n`);
        return 0;
      default:
        throw sbError('SB_ERR_USAGE', `usage: ${USAGE}`);
    }
  } finally {
    store.close();
  }
}
