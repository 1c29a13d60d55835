// Checks the values typed on the command line against their options' JSON schema before loadConfig
// merges them with a config file. loadConfig can only name the config key ("origins", "dataDir"),
// and ajv's own wording is a type list ("must be integer,null"); here the error names the flag as
// typed (--origin, --data) and says in words what it expects, with the value that was given:
//   sockbridge: --line-port must be an integer (got "abc")
// Values pass through ajv with loadConfig's coercion, so what comes back is already typed; range
// checks and the cross-option rules stay with loadConfig (one schema, checked again as a whole).

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { sbError } from '../../protocol/errors.js';
import { explainValueError, kebab, valueAt, type JsonSchema } from '../config.js';

const ajv = new Ajv({ allErrors: true, coerceTypes: 'array', strict: false });
const compiled = new WeakMap<object, ValidateFunction>();

/** The flag a config key is set by: `--${kebab(key)}` unless `flags` says otherwise. */
export type FlagNames = Record<string, string>;

function validatorFor(schema: object): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile({ type: 'object', properties: { value: schema } });
    compiled.set(schema, validate);
  }
  return validate;
}

/**
 * Returns `cli` with each value checked against `schema.properties[key]` and coerced to its type.
 * The first problem throws SB_ERR_USAGE naming the flag (exit code 2). Keys the schema does not
 * know are passed on for loadConfig to report.
 */
export function checkFlagValues(schema: JsonSchema, cli: Record<string, unknown>, flags: FlagNames = {}): Record<string, unknown> {
  const properties = (schema['properties'] ?? {}) as Record<string, object>;
  const checked: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(cli)) {
    const property = properties[key];
    if (value === undefined || property === undefined) {
      checked[key] = value;
      continue;
    }
    const data = { value: Array.isArray(value) ? [...value] : value };
    const validate = validatorFor(property);
    if (!validate(data)) {
      const error = validate.errors![0]!;
      const flag = flags[key] ?? `--${kebab(key)}`;
      throw sbError('SB_ERR_USAGE', `${flag} ${explainValueError(error, valueAt(data, error))}`);
    }
    checked[key] = data.value;
  }
  return checked;
}

/** For a command's own flags (no config file): checkFlagValues, then the schema's defaults fill in what was not given. */
export function flagValuesWithDefaults(schema: JsonSchema, cli: Record<string, unknown>): Record<string, unknown> {
  const checked = checkFlagValues(schema, cli);
  for (const [key, property] of Object.entries((schema['properties'] ?? {}) as Record<string, { default?: unknown }>)) {
    if (checked[key] === undefined && property.default !== undefined) checked[key] = property.default;
  }
  return checked;
}
