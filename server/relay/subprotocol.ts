// WebSocket subprotocol negotiation, as websockify ≥ 0.9 does it: the relay speaks `binary` only
// (raw bytes in binary messages). A client that offers no subprotocol at all is also served in
// binary (websockify does the same, and plain `new WebSocket(url)` clients work). A client that
// offers subprotocols but not `binary` (the retired `base64` of websockify < 0.9) is refused at the
// handshake, before any connection to the target, rather than fed bytes it would misread.

import { sbError, type SockbridgeError } from '../../protocol/errors.js';

export const RELAY_SUBPROTOCOL = 'binary';

/** The offered list from a `Sec-WebSocket-Protocol` header (RFC 6455 §4.1: comma-separated tokens). */
export function offeredSubprotocols(header: string | string[] | undefined): string[] {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

/** undefined when the offer is acceptable, else the error that refuses the handshake. */
export function checkSubprotocolOffer(header: string | string[] | undefined): SockbridgeError | undefined {
  const offered = offeredSubprotocols(header);
  if (offered.length === 0 || offered.includes(RELAY_SUBPROTOCOL)) return undefined;
  return sbError('SB_ERR_RAW_SUBPROTOCOL', offered.join(', ').slice(0, 100));
}

/** For ws's `handleProtocols`: pick `binary` whatever else is offered (ws would pick the first). */
export function selectRelaySubprotocol(protocols: Set<string>): string | false {
  return protocols.has(RELAY_SUBPROTOCOL) ? RELAY_SUBPROTOCOL : false;
}
