// loadConfig's messages name the flag a user would type.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['root'],
  properties: { root: { type: 'string' }, limits: { type: 'object', required: ['maxBytes'], properties: { maxBytes: { type: 'integer' } } } },
};

describe('loadConfig: a missing required option', () => {
  it('names the flag and the config key', () => {
    expect(() => loadConfig(schema, {})).toThrow('--root is required (or "root" in the config file)');
  });
  it('names the nested key', () => {
    expect(() => loadConfig(schema, { cli: { root: '/srv', limits: {} } })).toThrow('"limits.maxBytes" is required');
  });
});
