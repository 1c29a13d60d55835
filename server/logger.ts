// The one logger every sockbridge process starts with: JSON lines on stderr, so stdout stays for the
// lines people and scripts read (the URL, a first password); level from SOCKBRIDGE_LOG_LEVEL.

import { pino, type Logger } from 'pino';

/** Never log a cookie, a token or a password, whatever a serializer is later asked to include. */
export const REDACT_PATHS = ['req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]', 'password', '*.password'];

/** `level` applies when SOCKBRIDGE_LOG_LEVEL is unset. */
export function defaultLogger(level = 'info'): Logger {
  return pino({ level: process.env['SOCKBRIDGE_LOG_LEVEL'] ?? level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination(2));
}
