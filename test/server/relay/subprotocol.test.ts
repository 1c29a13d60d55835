import { describe, expect, it } from 'vitest';
import { checkSubprotocolOffer, offeredSubprotocols, selectRelaySubprotocol } from '../../../server/relay/subprotocol.js';

describe('relay subprotocol negotiation', () => {
  it('parses an offer as RFC 6455 comma-separated tokens', () => {
    expect(offeredSubprotocols(undefined)).toEqual([]);
    expect(offeredSubprotocols(' base64 ,binary')).toEqual(['base64', 'binary']);
    expect(offeredSubprotocols(['a', 'b, c'])).toEqual(['a', 'b', 'c']);
  });

  it('accepts no offer or an offer including binary, refuses the rest with SB_ERR_RAW_SUBPROTOCOL', () => {
    expect(checkSubprotocolOffer(undefined)).toBeUndefined();
    expect(checkSubprotocolOffer('')).toBeUndefined();
    expect(checkSubprotocolOffer('base64, binary')).toBeUndefined();
    expect(checkSubprotocolOffer('base64')?.code).toBe('SB_ERR_RAW_SUBPROTOCOL');
    expect(checkSubprotocolOffer('Binary')?.code).toBe('SB_ERR_RAW_SUBPROTOCOL'); // tokens are case-sensitive
  });

  it('selects binary whatever its position', () => {
    expect(selectRelaySubprotocol(new Set(['base64', 'binary']))).toBe('binary');
    expect(selectRelaySubprotocol(new Set(['base64']))).toBe(false);
  });
});
