import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_SPECS, SockbridgeError, WS_CLOSE, isErrorCode, sbError, type ErrorCode } from '../../protocol/errors.js';

const codes = Object.keys(ERROR_SPECS) as ErrorCode[];
const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('error registry', () => {
  it.each(codes)('%s: its code is its key, has a sane status and close code, and is documented', (code) => {
    const err = sbError(code, 'a', 'b', 'c');
    expect(err).toBeInstanceOf(SockbridgeError);
    expect(err.code).toBe(code);
    expect(code).toMatch(/^SB_ERR_[A-Z0-9_]+$/);
    expect(err.status).toBeGreaterThanOrEqual(400);
    expect(err.status).toBeLessThan(600);
    expect(Object.values(WS_CLOSE)).toContain(err.wsClose);
    expect(err.message).not.toContain('%s');
    expect(docs).toMatch(new RegExp(`\`${code}\``));
  });

  it('documents no code that does not exist', () => {
    const documented = [...docs.matchAll(/`(SB_ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]);
    expect(documented.filter((c) => !isErrorCode(c))).toEqual([]);
  });

  it('serialises to a code and a message only, never a stack', () => {
    expect(JSON.parse(JSON.stringify(sbError('SB_ERR_FILE_NOT_FOUND', 'x')))).toEqual({
      code: 'SB_ERR_FILE_NOT_FOUND',
      message: 'no such file: x',
    });
  });
});
