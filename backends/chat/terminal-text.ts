// Text that ends up on someone's terminal (line mode, the terminal client) must never carry control
// characters raw: ESC sequences can retitle windows, rewrite the screen, or on some terminals
// answer back into the shell (CVE-2003-0063 and kin). C0 (except tab), DEL and C1 are removed;
// line breaks become spaces so one message can never forge a second line ("alice: …").

// C0 except \t (0x09), DEL, and C1 (U+0080-U+009F: 8-bit CSI 0x9B is as dangerous as ESC [).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;
const LINE_BREAK = /\r\n|[\n\r\u2028\u2029]/g;

export function sanitizeForTerminal(text: string): string {
  return text.replace(LINE_BREAK, ' ').replace(CONTROL, '');
}
