import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isSockbridgeError } from '../../protocol/errors.js';
import {
  FrameDecoder,
  WholeFrameDecoder,
  encodeFrame,
  encodeFrameHead,
  type FrameEvent,
  type FrameHeader,
} from '../../protocol/frame-codec.js';
import { fcOptions, hexdump, splitAt } from '../helpers/fc.js';

// What the seed's MYTCPClient.put sends for a 5-byte file a.txt (Python's json.dumps spacing).
const SEED_PUT = Buffer.from([
  0x32, 0x00, 0x00, 0x00, // header length 50, int32 little-endian (struct.pack('i', 50))
  ...Buffer.from('{"cmd": "put", "filename": "a.txt", "filesize": 5}'), // 50 bytes of UTF-8 JSON
  ...Buffer.from('hello'), // body: filesize = 5 bytes
]);

interface Frame {
  header: FrameHeader;
  body: string;
}

/** Decodes a sequence of chunks into whole frames (bodies joined), the way a consumer would. */
function decodeAll(chunks: Uint8Array[], decoder = new FrameDecoder({ maxBodyBytes: 1 << 20 })): Frame[] {
  const frames: Frame[] = [];
  let current: { header: FrameHeader; parts: Buffer[] } | undefined;
  for (const chunk of chunks) {
    for (const ev of decoder.push(chunk)) {
      if (ev.type === 'header') current = { header: ev.header, parts: [] };
      else if (ev.type === 'body') current!.parts.push(Buffer.from(ev.chunk));
      else {
        frames.push({ header: current!.header, body: Buffer.concat(current!.parts).toString('latin1') });
        current = undefined;
      }
    }
  }
  decoder.finish();
  return frames;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (isSockbridgeError(err)) return err.code;
    throw err;
  }
  return undefined;
}

function rawFrame(headerBytes: Uint8Array, declaredLength = headerBytes.length): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeInt32LE(declaredLength);
  return Buffer.concat([prefix, headerBytes]);
}

describe('FrameDecoder', () => {
  it('decodes the seed client\'s put byte for byte, and docs/protocol.md shows those very bytes', () => {
    expect(decodeAll([SEED_PUT])).toEqual([{ header: { cmd: 'put', filename: 'a.txt', filesize: 5 }, body: 'hello' }]);
    const docs = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    expect(docs).toContain(hexdump(SEED_PUT));
  });

  it('yields the same frames fed whole, one byte at a time, or split anywhere', () => {
    const frames = [
      encodeFrame({ cmd: 'put', filename: 'x' }, Buffer.from('abc')),
      encodeFrame({ cmd: 'list' }),
      SEED_PUT,
      encodeFrame({ cmd: 'say', text: '粘包 ✓' }, Buffer.alloc(300, 7)),
    ];
    const stream = Buffer.concat(frames);
    const whole = decodeAll([stream]);
    expect(whole.map((f) => f.header.cmd)).toEqual(['put', 'list', 'put', 'say']);
    expect(decodeAll([...stream].map((b) => Uint8Array.of(b)))).toEqual(whole);
    // split exactly at the frame boundaries
    expect(decodeAll(frames)).toEqual(whole);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 20 }), (cuts) => {
        expect(decodeAll(splitAt(stream, cuts))).toEqual(whole);
      }),
      fcOptions(),
    );
  });

  it('round-trips any header and body through encodeFrame', () => {
    const key = fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !['__proto__', 'constructor', 'prototype', 'cmd', 'size'].includes(k));
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.dictionary(key, fc.jsonValue({ maxDepth: 2 })),
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (cmd, extra, body, cuts) => {
          const header = { ...extra, cmd };
          const frames = decodeAll(splitAt(encodeFrame(header, body), cuts));
          expect(frames).toHaveLength(1);
          const expected = JSON.parse(JSON.stringify(body.length > 0 ? { ...header, size: body.length } : header));
          expect(frames[0]!.header).toEqual(expected);
          expect(frames[0]!.body).toBe(Buffer.from(body).toString('latin1'));
        },
      ),
      fcOptions(),
    );
  });

  it('streams bodies as slices of the input: nothing is buffered or concatenated', () => {
    const decoder = new FrameDecoder({ maxBodyBytes: 10 * 1024 ** 3 });
    // A 10 GiB body declared; we feed 64 MiB of it and check each body event points into our chunk.
    const head = encodeFrameHead({ cmd: 'put', filename: 'big' }, 10 * 1024 ** 3);
    expect(decoder.push(head).map((e) => e.type)).toEqual(['header']);
    const chunk = Buffer.alloc(64 * 1024, 1);
    for (let i = 0; i < 1024; i++) {
      const events = decoder.push(chunk);
      expect(events).toHaveLength(1);
      const ev = events[0] as Extract<FrameEvent, { type: 'body' }>;
      expect(ev.chunk.buffer).toBe(chunk.buffer);
      expect(ev.chunk.length).toBe(chunk.length);
    }
    expect(decoder.idle).toBe(false);
  });

  it('refuses header lengths outside 1..max before buffering anything', () => {
    const limit = 1024;
    const d = () => new FrameDecoder({ maxHeaderBytes: limit });
    expect(codeOf(() => d().push(rawFrame(Buffer.alloc(0), 0)))).toBe('SB_ERR_FRAME_HEADER_LENGTH');
    expect(codeOf(() => d().push(Buffer.from([0xff, 0xff, 0xff, 0xff])))).toBe('SB_ERR_FRAME_HEADER_LENGTH'); // 2^32-1 = -1 as int32
    expect(codeOf(() => d().push(Buffer.from([0xff, 0xff, 0xff, 0x7f])))).toBe('SB_ERR_FRAME_HEADER_LENGTH'); // 2^31-1
    expect(codeOf(() => d().push(rawFrame(Buffer.alloc(0), limit + 1)))).toBe('SB_ERR_FRAME_HEADER_LENGTH');
    // exactly at the limit is fine (padding spaces are valid JSON whitespace)
    const atLimit = Buffer.from(`{"cmd":"x"}`.padEnd(limit, ' '));
    expect(d().push(rawFrame(atLimit)).map((e) => e.type)).toEqual(['header', 'end']);
    // one byte at a time: the error comes with the fourth length byte, not later
    const dec = d();
    const bytes = [0x01, 0x04, 0x00, 0x00]; // 1025
    for (const b of bytes.slice(0, 3)) expect(dec.push(Uint8Array.of(b))).toEqual([]);
    expect(codeOf(() => dec.push(Uint8Array.of(bytes[3]!)))).toBe('SB_ERR_FRAME_HEADER_LENGTH');
  });

  it.each([
    ['invalid UTF-8', Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), 'SB_ERR_FRAME_HEADER_UTF8'],
    ['invalid JSON', Buffer.from('{"cmd":'), 'SB_ERR_FRAME_HEADER_JSON'],
    ['an array', Buffer.from('["cmd"]'), 'SB_ERR_FRAME_HEADER_NOT_OBJECT'],
    ['null', Buffer.from('null'), 'SB_ERR_FRAME_HEADER_NOT_OBJECT'],
    ['a number', Buffer.from('42'), 'SB_ERR_FRAME_HEADER_NOT_OBJECT'],
    ['__proto__', Buffer.from('{"cmd":"x","__proto__":{"polluted":1}}'), 'SB_ERR_FRAME_HEADER_FORBIDDEN_KEY'],
    ['nested constructor', Buffer.from('{"cmd":"x","a":{"constructor":{"prototype":{}}}}'), 'SB_ERR_FRAME_HEADER_FORBIDDEN_KEY'],
    ['no cmd', Buffer.from('{"filename":"a"}'), 'SB_ERR_FRAME_CMD_MISSING'],
    ['empty cmd', Buffer.from('{"cmd":""}'), 'SB_ERR_FRAME_CMD_MISSING'],
    ['a non-string cmd', Buffer.from('{"cmd":7}'), 'SB_ERR_FRAME_CMD_MISSING'],
    ['an unknown cmd', Buffer.from('{"cmd":"rm"}'), 'SB_ERR_FRAME_CMD_UNKNOWN'],
    ['a negative size', Buffer.from('{"cmd":"put","size":-1}'), 'SB_ERR_FRAME_BODY_SIZE'],
    ['a fractional size', Buffer.from('{"cmd":"put","size":1.5}'), 'SB_ERR_FRAME_BODY_SIZE'],
    ['a string size', Buffer.from('{"cmd":"put","filesize":"5"}'), 'SB_ERR_FRAME_BODY_SIZE'],
    ['a size past the limit', Buffer.from('{"cmd":"put","size":1025}'), 'SB_ERR_FRAME_BODY_TOO_LARGE'],
    ['a body on a command that takes none', Buffer.from('{"cmd":"list","size":1}'), 'SB_ERR_FRAME_BODY_TOO_LARGE'],
  ])('refuses a header that is %s, and stays failed', (_name, header, code) => {
    const decoder = new FrameDecoder({
      commands: ['x', 'put', 'list'],
      maxBodyBytes: (h) => (h.cmd === 'put' ? 1024 : 0),
    });
    expect(codeOf(() => decoder.push(rawFrame(header)))).toBe(code);
    // once failed, the decoder never resynchronises on garbage: every later push fails the same way
    expect(codeOf(() => decoder.push(encodeFrame({ cmd: 'list' })))).toBe(code);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('reports a frame cut short at each stage', () => {
    const frame = encodeFrame({ cmd: 'put', filename: 'a' }, Buffer.from('0123456789'));
    for (const cut of [2, 4 + 3, frame.length - 4]) {
      const decoder = new FrameDecoder();
      decoder.push(frame.subarray(0, cut));
      expect(decoder.idle).toBe(false);
      expect(codeOf(() => decoder.finish())).toBe('SB_ERR_FRAME_TRUNCATED');
    }
    const decoder = new FrameDecoder();
    decoder.push(frame);
    expect(decoder.idle).toBe(true);
    expect(codeOf(() => decoder.finish())).toBeUndefined();
  });

  it('never throws anything but a typed error on random input', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), (chunks) => {
        const decoder = new FrameDecoder({ maxHeaderBytes: 256, maxBodyBytes: 256 });
        try {
          for (const c of chunks) decoder.push(c);
          decoder.finish();
        } catch (err) {
          expect(isSockbridgeError(err)).toBe(true);
        }
      }),
      fcOptions(500),
    );
  });

  it('survives mutated valid frames with nothing but typed errors', () => {
    const valid = Buffer.concat([SEED_PUT, encodeFrame({ cmd: 'list' }), encodeFrame({ cmd: 'get', filename: 'a.txt' })]);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 6 }), (flips, cuts) => {
        const mutated = Buffer.from(valid);
        for (const [at, value] of flips) mutated[at % mutated.length] = value;
        const decoder = new FrameDecoder({ maxBodyBytes: 64 });
        try {
          for (const c of splitAt(mutated, cuts)) decoder.push(c);
          decoder.finish();
        } catch (err) {
          expect(isSockbridgeError(err)).toBe(true);
        }
      }),
      fcOptions(500),
    );
  });
});

describe('encodeFrameHead', () => {
  it('states the body size itself, so header and body cannot disagree', () => {
    const head = encodeFrameHead({ cmd: 'put', size: 999 }, 3);
    const length = head.readInt32LE(0);
    expect(JSON.parse(head.subarray(4, 4 + length).toString())).toEqual({ cmd: 'put', size: 3 });
    const empty = encodeFrameHead({ cmd: 'list', size: 5 });
    expect(JSON.parse(empty.subarray(4).toString())).toEqual({ cmd: 'list' });
  });
});

describe('WholeFrameDecoder', () => {
  it('collects small bodies into whole frames across chunk boundaries', () => {
    const stream = Buffer.concat([encodeFrame({ cmd: 'stdin', id: 'a' }, Buffer.from('one')), encodeFrame({ cmd: 'ping' })]);
    const decoder = new WholeFrameDecoder();
    const frames = [...stream].flatMap((b) => decoder.push(Uint8Array.of(b)));
    expect(frames.map((f) => [f.header.cmd, f.body.toString()])).toEqual([
      ['stdin', 'one'],
      ['ping', ''],
    ]);
    expect(decoder.idle).toBe(true);
  });
});
