// Which chat messages the page counts as the viewer's own (styling, unread counts, DM conversations).
// A plain module (no runes), so the server's tsc and unit tests can use it.

/**
 * Whether `message` is the viewer's own: sent by an account (through the gateway) under the viewer's
 * name. A nickname alone proves nothing: a direct client of the chat ports may have used the name
 * before the account ever chatted (see ChatMessage.account).
 */
export function isOwn(message: { from: string; account?: boolean }, nick: string | null): boolean {
  // `account` absent: stored before the flag existed (unknown), counted by the name, as it was then
  return message.account !== false && message.from === nick;
}
