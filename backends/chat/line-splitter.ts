// Splits a byte stream into text lines for the chat's line mode (nc, telnet, the seed's client).
// LF ends a line, a CR before it is dropped (telnet sends CR LF, RFC 854), invalid UTF-8 becomes
// U+FFFD. A line longer than maxLineBytes is refused the moment the limit is passed (nothing more
// of it is buffered) and skipped up to its newline, or up to the next flush(). flush() turns a
// pending partial line into a line: the seed's client sends its text without any newline, so for it
// a pause, not a newline, ends a line, a refused one included. Pure: no sockets, no timers.

import { Buffer } from 'node:buffer';

export type LineItem = { type: 'line'; text: string } | { type: 'too-long'; bytes: number };

const LF = 0x0a;
const decoder = new TextDecoder('utf-8', { fatal: false });

export class LineSplitter {
  private parts: Buffer[] = [];
  private pending = 0;
  /** inside a line already refused as too long: drop bytes until its newline or the next flush() */
  private skipping = false;

  constructor(private readonly maxLineBytes: number) {}

  get hasPartial(): boolean {
    return this.pending > 0;
  }

  /** Inside a refused line: flush() would end it (the caller's pause timer must run). */
  get isSkipping(): boolean {
    return this.skipping;
  }

  push(chunk: Buffer): LineItem[] {
    const items: LineItem[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(LF, start);
      const end = nl === -1 ? chunk.length : nl;
      if (this.skipping) {
        if (nl !== -1) this.skipping = false;
      } else if (this.pending + (end - start) > this.maxLineBytes + 1) {
        // +1: a CR before the LF does not count against the limit.
        items.push({ type: 'too-long', bytes: this.pending + (end - start) });
        this.parts = [];
        this.pending = 0;
        this.skipping = nl === -1;
      } else {
        this.parts.push(chunk.subarray(start, end));
        this.pending += end - start;
        if (nl !== -1) items.push(...this.take());
      }
      start = nl === -1 ? chunk.length : nl + 1;
    }
    // Keep a copy of the partial tail only: the caller may reuse its chunk.
    if (this.parts.length > 0) this.parts = [Buffer.concat(this.parts)];
    return items;
  }

  /** The pending partial line, if any, as a line; ends a refused line, so the next bytes start a new one. */
  flush(): LineItem[] {
    this.skipping = false;
    return this.pending > 0 ? this.take() : [];
  }

  private take(): LineItem[] {
    let bytes = Buffer.concat(this.parts);
    this.parts = [];
    this.pending = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, -1);
    if (bytes.length > this.maxLineBytes) return [{ type: 'too-long', bytes: bytes.length }];
    return [{ type: 'line', text: decoder.decode(bytes) }];
  }
}
