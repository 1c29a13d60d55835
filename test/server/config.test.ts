// loadConfig's messages name the flag a user would type.
import { describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfigSection, HOST_PORT_PATTERN, loadConfig, readConfigFile } from '../../server/config.js';

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

describe('loadConfig: a value of the wrong shape', () => {
  it('says what a HOST:PORT or URL pattern means instead of printing the regular expression', () => {
    const shapes = {
      type: 'object',
      properties: { target: { type: 'string', pattern: HOST_PORT_PATTERN }, files: { type: 'string', pattern: '^tcp://' } },
    };
    expect(() => loadConfig(shapes, { cli: { target: 'nohost' } })).toThrow('--target / "target" must be HOST:PORT (e.g. 127.0.0.1:5900)');
    expect(() => loadConfig(shapes, { cli: { files: 'http://x:1' } })).toThrow('--files / "files" must be a tcp://HOST:PORT URL');
  });
});

describe('loadConfig: a value of the wrong type in a config file', () => {
  it('says the type in words and shows the value, as the command line does', () => {
    const typed = { type: 'object', properties: { maxConnections: { type: ['integer', 'null'] }, limits: { type: 'object', properties: { maxBytes: { type: 'integer' } } } } };
    expect(() => loadConfig(typed, { base: { maxConnections: 'lots' } })).toThrow('--max-connections / "maxConnections" must be an integer (got "lots")');
    expect(() => loadConfig(typed, { base: { limits: { maxBytes: '10k' } } })).toThrow('--limits / "limits.maxBytes" must be an integer (got "10k")');
  });
});

describe('readConfigFile: a file that cannot be read', () => {
  it('says why in words, not as an errno code', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sockbridge-config-'));
    try {
      expect(() => readConfigFile(join(dir, 'missing.json'))).toThrow(`cannot read config file ${join(dir, 'missing.json')}: no such file`);
      expect(() => readConfigFile(dir)).toThrow(`cannot read config file ${dir}: it is a directory`);
      expect(() => readConfigFile(join(dir, 'missing.json'))).toThrow(expect.objectContaining({ code: 'SB_ERR_CONFIG_FILE' }));
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});

describe('loadConfig: a set of options that is not one', () => {
  it('says it must be a JSON object, naming no flag (there is none)', () => {
    const sections = { type: 'object', properties: { gateway: { type: 'object' } } };
    expect(() => loadConfig(sections, { base: { gateway: 1 } })).toThrow('invalid configuration: "gateway" must be a JSON object (got 1)');
  });
});

describe('loadConfig: a bad secret', () => {
  it('says what is wrong with it, never what it is', () => {
    const secrets = { type: 'object', properties: { chatGatewayToken: { type: 'string', minLength: 16 }, limits: { type: 'object', properties: { execSecret: { type: 'string', minLength: 16 } } } } };
    const tooShort = () => loadConfig(secrets, { base: { chatGatewayToken: 'hunter2-secret' } });
    expect(tooShort).toThrow('--chat-gateway-token / "chatGatewayToken" must NOT have fewer than 16 characters');
    expect(tooShort).not.toThrow(/hunter2/);
    const nested = () => loadConfig(secrets, { base: { limits: { execSecret: 'short-one' } } });
    expect(nested).toThrow(/"limits.execSecret" must NOT have fewer than 16 characters/);
    expect(nested).not.toThrow(/short-one/);
  });
});

describe('checkConfigSection: a section of a config file (start\'s "files", "gateway"…)', () => {
  const section = {
    type: 'object',
    additionalProperties: false,
    properties: {
      secret: { type: 'string', minLength: 16 },
      limits: { type: 'object', additionalProperties: false, default: {}, properties: { maxBytes: { type: 'integer', default: 5 } } },
    },
  };
  const message = (run: () => void) => {
    try {
      run();
    } catch (err) {
      return { code: (err as { code?: string }).code, message: (err as Error).message };
    }
    return undefined;
  };

  it('names each wrong key by its place in the file, never a flag', () => {
    expect(message(() => checkConfigSection(section, { limits: { bogus: 1 } }, 'gateway'))).toEqual({
      code: 'SB_ERR_CONFIG_INVALID',
      message: 'invalid configuration: "gateway.limits.bogus" is not an option; remove it or check its spelling',
    });
    expect(message(() => checkConfigSection(section, { limits: { maxBytes: 'abc' } }, 'files'))?.message).toBe('invalid configuration: "files.limits.maxBytes" must be an integer (got "abc")');
    expect(message(() => checkConfigSection(section, { limits: 3 }, 'files'))?.message).toBe('invalid configuration: "files.limits" must be a JSON object (got 3)');
  });

  it('never echoes a secret, and leaves the section as it was (defaults go into a copy)', () => {
    expect(message(() => checkConfigSection(section, { secret: 'short-secret' }, 'exec'))?.message).toBe('invalid configuration: "exec.secret" must NOT have fewer than 16 characters');
    const given = { limits: {} };
    checkConfigSection(section, given, 'gateway');
    expect(given).toEqual({ limits: {} });
  });
});
