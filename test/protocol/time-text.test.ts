import { describe, expect, it } from 'vitest';
import { isSockbridgeError } from '../../protocol/errors.js';
import {
  decodeTimeTextReply,
  encodeTimeTextReply,
  formatTimeText,
  isTimeTextRequest,
  TIME_TEXT_PATTERN,
  TIME_TEXT_REPLY_BYTES,
} from '../../protocol/time-text.js';

describe('the seed text time protocol', () => {
  it('recognises exactly `time`, `time\\n` and `time\\r\\n`', () => {
    for (const ok of ['time', 'time\n', 'time\r\n']) expect(isTimeTextRequest(Buffer.from(ok))).toBe(true);
    for (const no of ['', 'tim', 'TIME', 'time ', ' time', 'times', 'time\n\n', 'time\r', 'date', 'time\0']) {
      expect(isTimeTextRequest(Buffer.from(no)), JSON.stringify(no)).toBe(false);
    }
  });

  it('formats local time as YYYY-MM-DD HH:MM:SS, zero-padded, 19 bytes', () => {
    const date = new Date(2026, 0, 2, 3, 4, 5); // local time, as the seed's time.localtime()
    expect(formatTimeText(date)).toBe('2026-01-02 03:04:05');
    const bytes = encodeTimeTextReply(new Date(2026, 11, 31, 23, 59, 59));
    expect(bytes.length).toBe(TIME_TEXT_REPLY_BYTES);
    expect(bytes.toString('ascii')).toBe('2026-12-31 23:59:59');
    expect(formatTimeText(new Date(999, 0, 1, 0, 0, 0))).toMatch(TIME_TEXT_PATTERN);
  });

  it('decodes a valid reply and refuses anything else with SB_ERR_NTP_REPLY', () => {
    expect(decodeTimeTextReply(Buffer.from('2026-11-25 12:00:00'))).toBe('2026-11-25 12:00:00');
    for (const bad of ['2026-11-25 12:00:0', '2026-11-25 12:00:000', 'xxxx-11-25 12:00:00', '']) {
      try {
        decodeTimeTextReply(Buffer.from(bad));
        throw new Error(`accepted ${bad}`);
      } catch (err) {
        expect(isSockbridgeError(err, 'SB_ERR_NTP_REPLY')).toBe(true);
      }
    }
  });
});
