// Small display helpers; everything they return is rendered as text, never HTML.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 512 B, 1.5 KiB, 12 MiB: one decimal below 10, none above. */
export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  const shown = () => value.toFixed(value < 10 ? 1 : 0);
  // Rounding can reach 1024 (1 048 575 B is 1023.999 KiB): that is shown as the next unit, "1.0 MiB".
  while ((value >= 1024 || (unit > 0 && Number(shown()) >= 1024)) && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${shown()} ${UNITS[unit]}`;
}

// Times are 24-hour everywhere (as the terminal clients show them), whatever the locale's habit.

/** HH:MM:SS */
export function formatClock(ms: number | Date): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
}

/** HH:MM (chat lines; the full date goes in a tooltip by formatDateTime). */
export function formatHourMinute(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
}

/** Date and time to the second. */
export function formatDateTime(ms: number, dateStyle: 'short' | 'medium' = 'short'): string {
  return new Date(ms).toLocaleString([], { dateStyle, timeStyle: 'medium', hourCycle: 'h23' });
}

/** Signed milliseconds with a fixed precision: "+1.2 ms", "-0.4 ms". */
export function formatMs(ms: number, digits = 1): string {
  return `${ms >= 0 ? '+' : '−'}${Math.abs(ms).toFixed(digits)} ms`;
}
