// What the files service's clients accept from it: an entry's fields are printed on a terminal and its
// sha256 goes into a file name, so a reply of the wrong shape is refused whole (audit2 #3, #7).
import { describe, expect, it } from 'vitest';
import { fromWireEntry, parseFileList, parsePartialInfo, toWireEntry } from '../../protocol/files-messages.js';

const SHA = 'ab'.repeat(32);
const ENTRY = { name: 'report.pdf', size: 1234, mtime: 1_764_000_000_000, sha256: SHA };
const ESC = '\u001b]0;PWNED\u0007';

/** Asserts that `parse` refuses its input with the stable code for a malformed message. */
const expectRefused = (parse: () => unknown) => expect(parse).toThrow(expect.objectContaining({ code: 'SB_ERR_MESSAGE_INVALID' }));

describe('fromWireEntry', () => {
  it('maps a valid reply back to the entry, field for field, as before', () => {
    expect(fromWireEntry({ cmd: 'data', ...toWireEntry(ENTRY), size: 1234, offset: 0 })).toEqual(ENTRY);
    expect(fromWireEntry({ cmd: 'ok', op: 'put', ...toWireEntry({ ...ENTRY, size: 0, mtime: -86_400_000 }) })).toEqual({ ...ENTRY, size: 0, mtime: -86_400_000 });
  });

  it("accepts sha256 '' only from a stat reply that says no complete file exists", () => {
    const missing = { cmd: 'stat', exists: false, name: 'x', total: 0, mtime: 0, sha256: '' };
    expect(fromWireEntry(missing)).toEqual({ name: 'x', size: 0, mtime: 0, sha256: '' });
    expectRefused(() => fromWireEntry({ ...missing, exists: true }));
    expectRefused(() => fromWireEntry({ ...missing, cmd: 'data', exists: undefined }));
  });

  it.each([
    ['a sha256 with escapes', { sha256: `abc${ESC}` }],
    ['a sha256 that is a path', { sha256: '/../../escaped-x' }],
    ['an uppercase sha256', { sha256: SHA.toUpperCase() }],
    ['a short sha256', { sha256: SHA.slice(1) }],
    ['a numeric sha256', { sha256: 5 }],
    ['a size with escapes', { total: `1${ESC}` }],
    ['a size as a numeric string', { total: '5' }],
    ['a negative size', { total: -1 }],
    ['a fractional size', { total: 1.5 }],
    ['an unsafe size', { total: 2 ** 53 }],
    ['a missing size', { total: undefined }],
    ['an mtime as a string', { mtime: '0' }],
    ['an mtime beyond what a Date holds', { mtime: 8.64e15 + 1 }],
    ['a fractional mtime', { mtime: 0.5 }],
    ['a numeric name', { name: 7 }],
    ['an empty name', { name: '' }],
  ])('refuses %s with SB_ERR_MESSAGE_INVALID', (_what, change) => {
    expectRefused(() => fromWireEntry({ cmd: 'data', ...toWireEntry(ENTRY), ...change }));
  });
});

describe('parseFileList', () => {
  it('returns the entries of a valid listing as they are, an owner not sent (a service older than owners) as null', () => {
    expect(parseFileList([ENTRY, { ...ENTRY, name: 'b' }])).toEqual([
      { ...ENTRY, owner: null },
      { ...ENTRY, name: 'b', owner: null },
    ]);
    expect(parseFileList([{ ...ENTRY, owner: 'alice' }])).toEqual([{ ...ENTRY, owner: 'alice' }]);
    expect(parseFileList([])).toEqual([]);
  });

  it.each([
    ['a body that is no array', { files: [] }],
    ['an entry that is no object', [ENTRY, 'b']],
    ['a size with escapes', [{ ...ENTRY, size: `1${ESC}` }]],
    ['a sha256 with escapes', [{ ...ENTRY, sha256: `abc${ESC}` }]],
    ["a sha256 ''", [{ ...ENTRY, sha256: '' }]],
  ])('refuses %s with SB_ERR_MESSAGE_INVALID', (_what, body) => {
    expectRefused(() => parseFileList(body));
  });
});

describe('parsePartialInfo', () => {
  it('returns a valid partial as it is, and refuses one of the wrong shape', () => {
    const partial = { size: 10, mtime: 5, sha256: SHA };
    expect(parsePartialInfo(partial)).toEqual(partial);
    for (const bad of [null, [], { ...partial, size: `1${ESC}` }, { ...partial, sha256: undefined }, { ...partial, mtime: 'x' }]) {
      expectRefused(() => parsePartialInfo(bad));
    }
  });
});
