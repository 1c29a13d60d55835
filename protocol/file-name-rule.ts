// What a file name may be: exactly one path component of the files store's flat namespace. Pure and
// browser-safe, so the files service, the gateway, the CLI and the web client apply one rule (the web
// client to refuse a name before sending the file). backends/files/file-name.ts turns a problem into
// SB_ERR_FILE_NAME_INVALID. Names are taken literally: `%2e%2e%2f` is a (strange but harmless) name.

import { FILE_NAME_MAX_BYTES } from './files-messages.js';

// C0 controls, DEL and C1 controls: invisible in listings and terminals, and NUL truncates C paths.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why `name` cannot be a file name ("must not start with \".\""), or null when it can. */
export function fileNameProblem(name: string): string | null {
  if (name.length === 0) return 'must not be empty';
  // A lone surrogate does not survive the UTF-8 round trip: such a name could not be stored as given.
  const utf8 = new TextEncoder().encode(name);
  if (new TextDecoder().decode(utf8) !== name) return 'must be valid Unicode';
  if (utf8.length > FILE_NAME_MAX_BYTES) return `must be at most ${FILE_NAME_MAX_BYTES} UTF-8 bytes`;
  if (name.includes('/') || name.includes('\\')) return 'must not contain / or \\';
  if (CONTROL.test(name)) return 'must not contain NUL or control characters';
  // Also excludes `.` and `..`, and keeps the store's own `.partial/` and `.meta/` out of reach.
  if (name.startsWith('.')) return 'must not start with "."';
  return null;
}
