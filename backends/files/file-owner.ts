// The refusal of a put or delete by an actor that may not change the file (the rule itself is
// mayChange in protocol/files-messages.ts, shared with the web client). FileStore applies it under
// the name's lock, with the rename or unlink it allows.

import { sbError, type SockbridgeError } from '../../protocol/errors.js';
import { mayChange, type FileActor } from '../../protocol/files-messages.js';

/** SB_ERR_FILE_NOT_OWNER for `name`, naming who may change it instead. */
export function notOwner(name: string, owner: string | null): SockbridgeError {
  return sbError('SB_ERR_FILE_NOT_OWNER', JSON.stringify(name), owner === null ? 'an admin (it has no owner)' : `its owner (${owner}) or an admin`);
}

/** Throws SB_ERR_FILE_NOT_OWNER unless `actor` may change `name`, whose owner is `owner`. */
export function checkMayChange(name: string, actor: FileActor | undefined, owner: string | null): void {
  if (!mayChange(actor, owner)) throw notOwner(name, owner);
}
