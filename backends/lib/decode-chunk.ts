// The receive step every framed TCP service shares: a chunk in, its frame events out, or the
// connection failed with the decoder's error (a stable SB_ERR_FRAME_… code for the peer).

/** `decoder.push(chunk)`; if it throws, hands the error to `fail` and returns undefined. */
export function decodeChunk<T>(decoder: { push(chunk: Uint8Array): T[] }, chunk: Uint8Array, fail: (err: unknown) => void): T[] | undefined {
  try {
    return decoder.push(chunk);
  } catch (err) {
    fail(err);
    return undefined;
  }
}
