// TelnetFilter: telnet commands out, data in, whatever the chunking (RFC 854, RFC 855).
import { describe, expect, it } from 'vitest';
import { TelnetFilter } from '../../../backends/chat/telnet-filter.js';

/** What PuTTY and netkit telnet send first, then a typed line. */
const NEGOTIATION_THEN_HELLO = Buffer.from([
  0xff, 0xfb, 0x1f, //          IAC WILL NAWS (window size)
  0xff, 0xfb, 0x18, //          IAC WILL TERMINAL-TYPE
  0xff, 0xfd, 0x01, //          IAC DO ECHO
  0xff, 0xfb, 0x03, //          IAC WILL SUPPRESS-GO-AHEAD
  0xff, 0xfa, 0x1f, 0x00, 0x50, 0x00, 0x18, 0xff, 0xf0, // IAC SB NAWS 80x24 IAC SE
  0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x0d, 0x0a, //           "hello" CR LF
]);

function whole(bytes: Uint8Array): Buffer {
  return new TelnetFilter().push(bytes);
}

function byteAtATime(bytes: Uint8Array): Buffer {
  const filter = new TelnetFilter();
  return Buffer.concat([...bytes].map((b) => filter.push(Uint8Array.of(b))));
}

describe('TelnetFilter', () => {
  it.each([['whole', whole], ['one byte at a time', byteAtATime]])('strips negotiation and subnegotiation, fed %s', (_, feed) => {
    expect(feed(NEGOTIATION_THEN_HELLO).toString('latin1')).toBe('hello\r\n');
  });

  it.each([['whole', whole], ['one byte at a time', byteAtATime]])('keeps IAC IAC as one 0xFF, drops 2-byte commands and CR NUL\'s NUL, fed %s', (_, feed) => {
    const input = [
      0x61, 0xff, 0xff, 0x62, //     "a" IAC IAC "b": a literal 0xFF
      0xff, 0xf1, //                 IAC NOP
      0xff, 0xfa, 0x18, 0xff, 0xff, 0x00, 0xff, 0xf0, // IAC SB TTYPE (data FF FF 00) IAC SE
      0x63, 0x0d, 0x00, 0x64, //     "c" CR NUL "d": a bare CR
    ];
    expect([...feed(Uint8Array.from(input))]).toEqual([0x61, 0xff, 0x62, 0x63, 0x0d, 0x64]);
  });

  it('passes IAC followed by a byte below 240 through whole: a frame header keeps its NUL bytes', () => {
    // header length 255 as int32 little-endian, then '{'
    expect([...whole(Uint8Array.from([0xff, 0x00, 0x00, 0x00, 0x7b]))]).toEqual([0xff, 0x00, 0x00, 0x00, 0x7b]);
    expect([...whole(Uint8Array.from([0x00, 0x00, 0x00]))]).toEqual([0x00, 0x00, 0x00]);
  });

  it('never throws on random input, and its output is never longer than its input plus one byte', () => {
    const filter = new TelnetFilter();
    for (let i = 0; i < 2000; i++) {
      const chunk = Uint8Array.from({ length: Math.floor(Math.random() * 40) }, () => (Math.random() < 0.3 ? 0xf0 + Math.floor(Math.random() * 16) : Math.floor(Math.random() * 256)));
      expect(filter.push(chunk).length).toBeLessThanOrEqual(chunk.length + 1);
    }
  });
});
