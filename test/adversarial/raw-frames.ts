// Hand-built wire bytes for the adversarial tests: a length prefix that may lie, and a frame around
// any text (invalid JSON included), which encodeFrame would refuse to produce.

/** The 4-byte little-endian length prefix of a frame. */
export function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** A frame whose header is exactly `json` (not checked or re-encoded). */
export function rawFrame(json: string): Buffer {
  const body = Buffer.from(json);
  return Buffer.concat([lengthPrefix(body.length), body]);
}
