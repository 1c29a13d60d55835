// Web Storage that may be missing: disabled storage throws on access, a full one on write. What is
// kept there is only a convenience (rooms to rejoin, an unsent draft), so a failure means "not kept".

type StorageName = 'localStorage' | 'sessionStorage';

export function readStored(where: StorageName, key: string): string | null {
  try {
    return window[where].getItem(key);
  } catch {
    return null;
  }
}

/** `null` removes the key. A failure means "not kept". */
export function writeStored(where: StorageName, key: string, value: string | null): void {
  writeStoredChecked(where, key, value);
}

/**
 * writeStored for what a reload must not lose (unsent chat messages): says whether it was kept, so
 * the page can warn before it unloads instead.
 */
export function writeStoredChecked(where: StorageName, key: string, value: string | null): boolean {
  try {
    if (value === null) window[where].removeItem(key);
    else window[where].setItem(key, value);
    return true;
  } catch {
    return false;
  }
}
