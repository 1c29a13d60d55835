// The receive step every framed TCP connection shares (services and their clients): a chunk in,
// its frame events out, or the connection failed with the decoder's error (a stable SB_ERR_FRAME_… code).

/** `decoder.push(chunk)`; if it throws, hands the error to `fail` and returns undefined. */
export function decodeChunk<T>(decoder: { push(chunk: Uint8Array): T[] }, chunk: Uint8Array, fail: (err: unknown) => void): T[] | undefined {
  try {
    return decoder.push(chunk);
  } catch (err) {
    fail(err);
    return undefined;
  }
}
