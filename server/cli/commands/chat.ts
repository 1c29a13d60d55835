// Placeholder until this command lands; see docs/architecture.md for who builds it.
import { sbError } from '../../../protocol/errors.js';

export async function run(_argv: string[]): Promise<number> {
  throw sbError('SB_ERR_USAGE', 'sockbridge chat: not implemented yet');
}
