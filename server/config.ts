// The one place configuration is read and validated. Each component declares a JSON schema for its
// options (with defaults) next to its code; loadConfig merges schema defaults < config file < command
// line, validates once, and returns a frozen object. Error messages name the flag and the config key,
// so a user knows what to fix.

import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { fileErrorReason, sbError } from '../protocol/errors.js';

export type JsonSchema = Record<string, unknown>;

const ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: 'array', strict: false });

export interface ConfigSources {
  /** Values from the command line, already camelCased (see cli/args.ts). */
  cli?: Record<string, unknown>;
  /** Path of a JSON config file (`--config FILE`). */
  configFile?: string | undefined;
  /** Values a caller (e.g. `sockbridge start`) fixes before the user's own. */
  base?: Record<string, unknown>;
}

export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw sbError('SB_ERR_CONFIG_FILE', path, fileErrorReason(err));
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw sbError('SB_ERR_CONFIG_FILE', path, `not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw sbError('SB_ERR_CONFIG_FILE', path, 'the top level must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/** `HOST:PORT` with a literal host (a name, IPv4 or [IPv6]): relay targets and raw targets. */
export const HOST_PORT_PATTERN = '^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):\\d{1,5}$';

/** What a schema pattern means, for the error message (instead of the regular expression). */
const PATTERN_HINTS: Record<string, string> = {
  [HOST_PORT_PATTERN]: 'must be HOST:PORT (e.g. 127.0.0.1:5900)',
  '^tcp://': 'must be a tcp://HOST:PORT URL',
  '^udp://': 'must be a udp://HOST:PORT URL',
  '^https?://': 'must start with http:// or https://',
};

/** ajv's type names in words ("must be integer,null" becomes "must be an integer"). */
const TYPE_WORDS: Record<string, string> = {
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  string: 'text',
  array: 'a list',
  object: 'a set of NAME=VALUE',
};

/** The value an ajv error is about (undefined for a missing one). */
export function valueAt(root: unknown, error: ErrorObject): unknown {
  let value = root;
  for (const part of error.instancePath.split('/').slice(1)) value = (value as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  return value;
}

/**
 * What is wrong with one value, in words: `must be an integer (got "abc")`. Shared by the config
 * loader and the command line's flag check (server/cli/flag-values.ts), so both say it the same way.
 */
export function explainValueError(error: ErrorObject, given: unknown): string {
  const got = given === undefined ? '' : ` (got ${JSON.stringify(given)})`;
  switch (error.keyword) {
    case 'type': {
      const types = ([] as string[]).concat((error.params as { type: string | string[] }).type).filter((t) => t !== 'null');
      return `must be ${types.map((t) => TYPE_WORDS[t] ?? t).join(' or ')}${got}`;
    }
    case 'pattern': {
      const name = (error as ErrorObject & { propertyName?: string }).propertyName;
      if (name !== undefined) return `NAME ${JSON.stringify(name)} ${error.message ?? 'is invalid'}`;
      return `${PATTERN_HINTS[String((error.params as { pattern: string }).pattern)] ?? error.message ?? 'is invalid'}${got}`;
    }
    case 'minLength':
      return (error.params as { limit: number }).limit === 1 ? 'must not be empty' : `${error.message ?? 'is too short'}${got}`;
    case 'enum':
      return `must be one of ${((error.params as { allowedValues: unknown[] }).allowedValues ?? []).join(', ')}${got}`;
    default:
      return `${error.message ?? 'is invalid'}${got}`;
  }
}

/** The flag that sets a config key: `maxConnections` → `max-connections` (without the dashes). */
export const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Options whose values are never echoed in an error (tokens, secrets, passwords). */
const SECRET_KEY = /secret|token|password/i;

/**
 * One ajv error in words. Without `section` the key is named as its flag and its place
 * (`--max-connections / "maxConnections" must be an integer`); with it, the value is known to come
 * from that section of a config file and is named by its place there (`"files.maxFileSize" …`).
 */
function describe(error: ErrorObject, given: unknown, section?: string): string {
  const inFile = section !== undefined;
  const parts = error.instancePath.split('/').slice(1).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
  const path = (inFile ? [section, ...parts] : parts).join('.');
  if (error.keyword === 'additionalProperties') {
    const key = String((error.params as { additionalProperty: string }).additionalProperty);
    return inFile ? `"${path}.${key}" is not an option; remove it or check its spelling` : `unknown option "${key}" (--${kebab(key)}); remove it or check its spelling`;
  }
  if (error.keyword === 'required') {
    const key = String((error.params as { missingProperty: string }).missingProperty);
    return path ? `"${path}.${key}" is required` : `--${kebab(key)} is required (or "${key}" in the config file)`;
  }
  // A set of options (start's "gateway", "chat"…) is only ever a config-file value, never a flag.
  if (error.keyword === 'type' && (error.params as { type: unknown }).type === 'object' && path) {
    return `"${path}" must be a JSON object (got ${JSON.stringify(given)})`;
  }
  const top = parts[0] ?? '';
  const where = inFile ? `"${path}"` : top ? `--${kebab(top)} / "${path}"` : 'configuration';
  // A wrong secret is still a secret: say what is wrong with it, never what it is.
  return `${where} ${explainValueError(error, SECRET_KEY.test(path) ? undefined : given)}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

export function loadConfig<T>(schema: JsonSchema, sources: ConfigSources = {}): Readonly<T> {
  const fromFile = sources.configFile ? readConfigFile(sources.configFile) : {};
  const merged: Record<string, unknown> = { ...sources.base, ...fromFile };
  for (const [key, value] of Object.entries(sources.cli ?? {})) {
    if (value !== undefined) merged[key] = value;
  }
  const validate = ajv.compile(schema);
  if (!validate(merged)) {
    const reasons = (validate.errors ?? []).map((error) => describe(error, valueAt(merged, error))).join('; ');
    throw sbError('SB_ERR_CONFIG_INVALID', reasons);
  }
  return deepFreeze(merged as T);
}

/**
 * Checks `section`, the object at `path` in a config file (start's "files", "gateway"…), against
 * `schema` without changing it (defaults go into a copy), for a caller that hands the section to its
 * component later and must refuse it before creating or starting anything. A section is only ever
 * written in a file, so each error names the key by its place there, never a flag:
 * `"files.maxFileSize" must be an integer (got "abc")`, `"gateway.limits.bogus" is not an option`.
 */
export function checkConfigSection(schema: JsonSchema, section: Readonly<Record<string, unknown>>, path: string): void {
  const value = structuredClone(section) as Record<string, unknown>;
  const validate = ajv.compile(schema);
  if (validate(value)) return;
  const reasons = (validate.errors ?? []).map((error) => describe(error, valueAt(value, error), path)).join('; ');
  throw sbError('SB_ERR_CONFIG_INVALID', reasons);
}

/** Schema pieces every service shares. */
export const hostSchema = { type: 'string', minLength: 1, default: '127.0.0.1' } as const;
export const portSchema = (defaultPort: number) => ({ type: 'integer', minimum: 0, maximum: 65535, default: defaultPort }) as const;
