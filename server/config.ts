// The one place configuration is read and validated. Each component declares a JSON schema for its
// options (with defaults) next to its code; loadConfig merges schema defaults < config file < command
// line, validates once, and returns a frozen object. Error messages name the flag and the config key,
// so a user knows what to fix.

import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject } from 'ajv';
import { sbError } from '../protocol/errors.js';

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
    throw sbError('SB_ERR_CONFIG_FILE', path, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
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

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function describe(error: ErrorObject): string {
  const path = error.instancePath.replace(/^\//, '').replace(/\//g, '.');
  if (error.keyword === 'additionalProperties') {
    const key = String((error.params as { additionalProperty: string }).additionalProperty);
    return `unknown option "${key}" (--${kebab(key)}); remove it or check its spelling`;
  }
  if (error.keyword === 'required') {
    const key = String((error.params as { missingProperty: string }).missingProperty);
    const full = path ? `${path}.${key}` : key;
    return path ? `"${full}" is required` : `--${kebab(key)} is required (or "${key}" in the config file)`;
  }
  const top = path.split('.')[0] ?? '';
  const where = top ? `--${kebab(top)} / "${path}"` : 'configuration';
  const hint = error.keyword === 'pattern' ? PATTERN_HINTS[String((error.params as { pattern: string }).pattern)] : undefined;
  return `${where} ${hint ?? error.message ?? 'is invalid'}`;
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
    const reasons = (validate.errors ?? []).map(describe).join('; ');
    throw sbError('SB_ERR_CONFIG_INVALID', reasons);
  }
  return deepFreeze(merged as T);
}

/** Schema pieces every service shares. */
export const hostSchema = { type: 'string', minLength: 1, default: '127.0.0.1' } as const;
export const portSchema = (defaultPort: number) => ({ type: 'integer', minimum: 0, maximum: 65535, default: defaultPort }) as const;
