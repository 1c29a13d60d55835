// Strips telnet commands from the chat's line stream (RFC 854, RFC 855). A telnet client (telnet,
// PuTTY) opens with option negotiation, e.g. `FF FB 1F` (IAC WILL NAWS), and may send more at any
// time; none of it is text. The service answers none of it: a peer that hears nothing back keeps
// the defaults (RFC 854's network virtual terminal, line at a time), which is what line mode wants.
// Pure: no sockets, no timers; a sequence split across chunks is carried over in the state.
//
//   IAC IAC            a literal 0xFF data byte
//   IAC WILL|WONT|DO|DONT opt    negotiation, 3 bytes
//   IAC SB … IAC SE    subnegotiation; an IAC IAC inside it is data of the subnegotiation
//   IAC cmd            any other command (NOP, GA, AYT, …), 2 bytes
//   CR NUL             a bare carriage return (RFC 854): the NUL is dropped
// IAC followed by a byte below 240 is not telnet: both bytes pass through as data (a frame client's
// length header such as `FF 00 00 00` keeps its NUL bytes, and is refused as not text).

import { Buffer } from 'node:buffer';

const IAC = 0xff;
const SE = 0xf0;
const SB = 0xfa;
const WILL = 0xfb;
const DONT = 0xfe;
/** the lowest telnet command code (SE) */
const FIRST_COMMAND = 0xf0;
const CR = 0x0d;
const NUL = 0x00;

enum State {
  Data,
  /** after IAC */
  Command,
  /** after IAC WILL/WONT/DO/DONT: the next byte is the option */
  Option,
  /** inside IAC SB … */
  Subnegotiation,
  /** after IAC inside a subnegotiation */
  SubnegotiationCommand,
}

export class TelnetFilter {
  private state = State.Data;
  private afterCr = false;

  /** The data bytes of `chunk`, telnet commands removed (a new Buffer; `chunk` is not changed). */
  push(chunk: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(chunk.length + 1);
    let n = 0;
    for (const b of chunk) {
      switch (this.state) {
        case State.Data:
          if (b === IAC) this.state = State.Command;
          else if (!(b === NUL && this.afterCr)) out[n++] = b;
          this.afterCr = b === CR;
          break;
        case State.Command:
          this.state = State.Data;
          if (b === IAC) {
            out[n++] = IAC;
          } else if (b < FIRST_COMMAND) {
            out[n++] = IAC;
            out[n++] = b;
          } else {
            if (b === SB) this.state = State.Subnegotiation;
            else if (b >= WILL && b <= DONT) this.state = State.Option;
          }
          this.afterCr = false;
          break;
        case State.Option:
          this.state = State.Data;
          break;
        case State.Subnegotiation:
          if (b === IAC) this.state = State.SubnegotiationCommand;
          break;
        case State.SubnegotiationCommand:
          this.state = b === SE ? State.Data : State.Subnegotiation;
          break;
      }
    }
    return out.subarray(0, n);
  }
}
