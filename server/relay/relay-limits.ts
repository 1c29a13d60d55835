// The limits every relayed connection runs under, whether it arrived through the gateway's
// /ws/raw/:target or through `sockbridge relay`. Each is always on, with a safe default.

export interface RelayLimits {
  /** Largest WebSocket message accepted from the browser; larger closes with 1009 (RFC 6455 §7.4.1). */
  maxMessageBytes: number;
  /** WebSocket bufferedAmount above which reading from the target pauses until it drains. */
  highWaterBytes: number;
  /** How long connecting to the target may take. */
  connectTimeoutMs: number;
  /** A relay with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** After the browser leaves: how long the target may take to finish before it is destroyed. */
  lingerMs: number;
}

export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxMessageBytes: 1024 * 1024,
  highWaterBytes: 1024 * 1024,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 3600_000,
  lingerMs: 5_000,
});

/** The JSON-schema pieces for these limits, shared by the relay server's options schema. */
export const relayLimitsSchemaProperties = {
  maxMessageBytes: { type: 'integer', minimum: 1024, maximum: 64 * 1024 * 1024, default: DEFAULT_RELAY_LIMITS.maxMessageBytes },
  highWaterBytes: { type: 'integer', minimum: 1024, default: DEFAULT_RELAY_LIMITS.highWaterBytes },
  connectTimeoutMs: { type: 'integer', minimum: 100, default: DEFAULT_RELAY_LIMITS.connectTimeoutMs },
  idleTimeoutMs: { type: 'integer', minimum: 1000, default: DEFAULT_RELAY_LIMITS.idleTimeoutMs },
  lingerMs: { type: 'integer', minimum: 0, default: DEFAULT_RELAY_LIMITS.lingerMs },
} as const;
