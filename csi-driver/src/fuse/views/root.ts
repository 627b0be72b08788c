import { E, fsError } from '../errno.js';
import { ROOT_ENTRIES, type At } from '../layout.js';
import type { Stats } from './stats.js';
import type { View } from './view.js';

/** `/`: the mount's own directory, listing the views. */
export function rootView(stats: Stats): View<At<'root'>> {
  return {
    getattr: () => stats.dir(0o555),
    readdir: () => [...ROOT_ENTRIES],
    open: () => {
      throw fsError(E.EISDIR, '/ is a directory');
    },
  };
}

const missing = (): never => {
  throw fsError(E.ENOENT, 'no such entry in the mount');
};

/** Any path no view owns. */
export const MISSING: View<At<'missing'>> = { getattr: missing, readdir: missing, open: missing };
