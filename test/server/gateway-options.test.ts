// The gateway's limits that mirror other components' options keep their minimums and defaults.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../server/config.js';
import { gatewayOptionsSchema, type GatewayOptions } from '../../server/gateway-options.js';
import { DEFAULT_RELAY_LIMITS } from '../../server/relay/relay-limits.js';

const load = (limits: Record<string, unknown> = {}) => loadConfig<GatewayOptions>(gatewayOptionsSchema, { base: { limits } });

describe('gateway limits: /ws/raw timeouts and /ws/exec stdin queue', () => {
  it('default to what `sockbridge relay` uses, and 4 MiB of queued stdin', () => {
    expect(load().limits).toMatchObject({
      rawConnectTimeoutMs: DEFAULT_RELAY_LIMITS.connectTimeoutMs,
      rawIdleTimeoutMs: DEFAULT_RELAY_LIMITS.idleTimeoutMs,
      rawLingerMs: DEFAULT_RELAY_LIMITS.lingerMs,
      execMaxQueuedStdinBytes: 4 * 1024 * 1024,
    });
  });

  it('refuses values under the relay flags\' minimums, naming the key', () => {
    for (const [key, value] of [['rawConnectTimeoutMs', 99], ['rawIdleTimeoutMs', 999], ['rawLingerMs', -1], ['execMaxQueuedStdinBytes', -1]] as const) {
      expect(() => load({ [key]: value })).toThrow(expect.objectContaining({ code: 'SB_ERR_CONFIG_INVALID', message: expect.stringContaining(`limits.${key}`) }));
    }
    expect(load({ rawConnectTimeoutMs: 100, rawIdleTimeoutMs: 1000, rawLingerMs: 0, execMaxQueuedStdinBytes: 0 }).limits.rawIdleTimeoutMs).toBe(1000);
  });
});

describe('docs/api.md', () => {
  it('documents every key of the gateway limits in its "Limits and timeouts" table', async () => {
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../../docs/api.md', import.meta.url), 'utf8');
    const table = doc.slice(doc.indexOf('## Limits and timeouts'));
    const limits = (gatewayOptionsSchema.properties.limits as { properties: Record<string, unknown> }).properties;
    const missing = Object.keys(limits).filter((key) => !table.includes(`| \`${key}\` |`));
    expect(missing).toEqual([]);
  });
});
