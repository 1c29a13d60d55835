// Command-line parsing for every sockbridge command, on node:util parseArgs. Flags are kebab-case
// (--secret-file) and map to camelCase config keys (secretFile), so a config file and the command
// line share one vocabulary. Any parse problem is SB_ERR_USAGE: one line and exit code 2.

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { sbError } from '../../protocol/errors.js';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

export interface ParsedCommandLine {
  values: Record<string, unknown>;
  positionals: string[];
  configFile: string | undefined;
  /** Everything after a literal `--` (for `sockbridge exec … -- CMD ARGS`). */
  rest: string[];
}

const camel = (key: string) => key.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());

export function parseCommandLine(argv: readonly string[], options: OptionSpecs, usage: string): ParsedCommandLine {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? [...argv] : argv.slice(0, dash);
  const rest = dash === -1 ? [] : argv.slice(dash + 1);
  let parsed;
  try {
    parsed = parseArgs({
      args: own,
      options: { ...options, config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw sbError('SB_ERR_USAGE', `${flagProblem(err as NodeJS.ErrnoException, commandName(usage))}\nusage: ${usage}`);
  }
  if (parsed.values['help']) throw helpRequested(usage);
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed.values)) {
    if (key === 'config' || key === 'help') continue;
    values[camel(key)] = value;
  }
  const configFile = parsed.values['config'];
  return { values, positionals: parsed.positionals, configFile: typeof configFile === 'string' ? configFile : undefined, rest };
}

/** `sockbridge serve files --root DIR …` → "serve files": the usage's leading lowercase words. */
function commandName(usage: string): string {
  const words = usage.split(/\s+/).slice(1);
  const end = words.findIndex((w) => !/^[a-z][a-z-]*$/.test(w));
  return words.slice(0, end === -1 ? words.length : end).join(' ');
}

/**
 * parseArgs' complaint in our words, on one line. Its own text spans lines, quotes oddly and advises
 * `-- "--bogus"`, which is wrong for sockbridge (after `--` comes exec's command, not a positional).
 */
function flagProblem(err: NodeJS.ErrnoException, command: string): string {
  const flag = /'(-[^' ]+)/.exec(err.message)?.[1] ?? '';
  const help = `run sockbridge ${command} --help`;
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return `unknown option ${flag} for "${command}"; ${help}`;
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/does not take an argument/.test(err.message)) return `${flag} takes no value; ${help}`;
    // "argument is ambiguous": what follows starts with "-", so it was taken for another flag
    if (/ambiguous/.test(err.message)) return `${flag} needs a value (write ${flag}=VALUE if it starts with "-"); ${help}`;
    return `${flag} needs a value; ${help}`;
  }
  return `${err.message.split('\n')[0]}; ${help}`;
}

/** What --help throws: main prints the usage on stdout and exits 0. */
export function helpRequested(usage: string): Error {
  return Object.assign(sbError('SB_ERR_USAGE', `usage: ${usage}`), { help: true });
}

/** For commands that take flags only: a stray word (e.g. `serve files /srv` for `--root /srv`) is a usage error, not ignored. */
export function rejectPositionals(positionals: readonly string[], usage: string): void {
  if (positionals.length > 0) throw sbError('SB_ERR_USAGE', `unexpected argument "${positionals[0]}"\nusage: ${usage}`);
}

/**
 * `host:port` → parts; `:port` and `port` mean 127.0.0.1. `example` is the command's own service
 * at its default port (`127.0.0.1:7004` for time), so the hint is one the user can copy.
 */
export function parseHostPort(text: string | undefined, usage: string, example: string): { host: string; port: number } {
  if (!text) throw sbError('SB_ERR_USAGE', `missing HOST:PORT\nusage: ${usage}`);
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw sbError('SB_ERR_USAGE', `"${text}" is not HOST:PORT (e.g. ${example})\nusage: ${usage}`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

/** `--allow ls,df --allow cat` → ['ls', 'df', 'cat'] */
export function splitList(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const items = Array.isArray(value) ? value : [value];
  return items.flatMap((v) => String(v).split(',')).map((s) => s.trim()).filter(Boolean);
}
