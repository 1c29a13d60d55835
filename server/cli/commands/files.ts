// Placeholder until the files commands land; see docs/architecture.md.
import { sbError } from '../../../protocol/errors.js';

const todo = async (_argv: string[]): Promise<number> => {
  throw sbError('SB_ERR_USAGE', 'not implemented yet');
};
export const put = todo;
export const get = todo;
export const ls = todo;
