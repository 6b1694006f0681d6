/**
 * Checks of the paths a user gives (--out, --root, --html, --results, --data, --checkpoint),
 * made before any work: each fault is a UserError naming the option, the path and what was
 * expected: missing, a file where a folder is needed (or the reverse), unreadable, unwritable,
 * a symbolic-link loop.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FS_CAUSES, UserError } from './errors';

function statOf(option: string, p: string): fs.Stats | undefined {
  try {
    return fs.statSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new UserError(`${option} ${p}: ${FS_CAUSES[code ?? ''] ?? (err as Error).message}`);
  }
}

function canAccess(p: string, mode: number): boolean {
  try {
    fs.accessSync(p, mode);
    return true;
  } catch {
    return false;
  }
}

/** The nearest existing folder at or above `p` (where a new folder would be made). */
function existingParent(option: string, p: string): string {
  let dir = path.resolve(p);
  for (;;) {
    const st = statOf(option, dir);
    if (st) {
      if (!st.isDirectory()) throw new UserError(`${option} ${p}: ${dir} is a file, so no folder can be made under it`);
      return dir;
    }
    const up = path.dirname(dir);
    if (up === dir) return dir;
    dir = up;
  }
}

/**
 * A folder the program reads (and, with `write`, writes into; `create` lets it not exist yet,
 * provided it can be made). Returns the absolute path.
 */
export function checkFolder(option: string, p: string, how: { write?: boolean; create?: boolean } = {}): string {
  const st = statOf(option, p);
  if (!st) {
    if (!how.create) throw new UserError(`${option} ${p}: no such folder`);
    const parent = existingParent(option, p);
    if (!canAccess(parent, fs.constants.W_OK | fs.constants.X_OK)) {
      throw new UserError(`${option} ${p}: cannot create it: ${parent} is not writable (permission denied or a read-only file system)`);
    }
    return path.resolve(p);
  }
  if (!st.isDirectory()) throw new UserError(`${option} ${p}: this is a file; ${option} expects a folder`);
  if (!canAccess(p, fs.constants.R_OK | fs.constants.X_OK)) throw new UserError(`${option} ${p}: the folder is not readable (permission denied)`);
  if (how.write && !canAccess(p, fs.constants.W_OK)) {
    throw new UserError(`${option} ${p}: the folder is not writable (permission denied or a read-only file system)`);
  }
  return path.resolve(p);
}

/** A file the program reads. Returns the absolute path. */
export function checkReadableFile(option: string, p: string): string {
  const st = statOf(option, p);
  if (!st) throw new UserError(`${option} ${p}: no such file`);
  if (st.isDirectory()) throw new UserError(`${option} ${p}: this is a folder; ${option} expects a file`);
  if (!canAccess(p, fs.constants.R_OK)) throw new UserError(`${option} ${p}: the file is not readable (permission denied)`);
  return path.resolve(p);
}

/** A file the program writes (its folder is made if missing). Returns the absolute path. */
export function checkWritableFile(option: string, p: string): string {
  const st = statOf(option, p);
  if (st?.isDirectory()) throw new UserError(`${option} ${p}: this is a folder; ${option} expects a file name`);
  if (st && !canAccess(p, fs.constants.W_OK)) throw new UserError(`${option} ${p}: the file is not writable (permission denied)`);
  checkFolder(option, path.dirname(path.resolve(p)), { write: true, create: true });
  return path.resolve(p);
}

/** Whether `p` is a symbolic link (whatever it points at, if anything). */
export function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Temporary files of an interrupted atomic write or download: `<name>.tmp-<pid>-<ms>`, `<name>.part-<pid>`. */
export const TEMPORARY_NAME = /\.(tmp-\d+-\d+|part-\d+)$/;

/**
 * The entries of folder `dir` that the program would not have written there (none when it
 * does not exist): what an output folder holds of the user's own, for a refusal to name.
 */
export function foreignEntries(dir: string, own: (name: string) => boolean): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((name) => name !== '.lock' && !TEMPORARY_NAME.test(name) && !own(name)).sort();
}

/** "a, b, c and 4 more", for a message naming what a folder holds. */
export function someNames(names: string[], max = 5): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}
