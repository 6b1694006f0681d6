/**
 * An error caused by the user's input (a bad flag, a missing or corrupt file).
 * Entry points print its message without a stack trace and exit non-zero.
 */
export class UserError extends Error {
  constructor(message: string, readonly exitCode = 2) {
    super(message);
    this.name = 'UserError';
  }
}

/** What a file-system error code means for a path a user gave. */
export const FS_CAUSES: Record<string, string> = {
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder, a file was expected',
  ELOOP: 'a symbolic-link loop (the links point at each other)',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  ENAMETOOLONG: 'the name is too long',
  EEXIST: 'it exists already',
  ENOTEMPTY: 'the folder is not empty',
};

/** A file-system error with a path and a known cause as a UserError naming both; undefined for anything else. */
export function fsUserError(err: unknown, label?: string): UserError | undefined {
  const e = err as NodeJS.ErrnoException;
  if (!e || typeof e !== 'object' || !e.code || !(e.code in FS_CAUSES)) return undefined;
  const where = e.path ?? label;
  if (!where) return undefined;
  const verb = e.syscall ? ` (${e.syscall})` : '';
  return new UserError(`${label && e.path && label !== e.path ? `${label}: ` : ''}${where}: ${FS_CAUSES[e.code]}${verb}, ${e.code}`);
}

/**
 * Runs a CLI entry point: user errors become one clear line, anything else a stack trace.
 * `afterError` runs last on failure (e.g. to exit at once when a library may hang).
 */
export function runMain(main: () => Promise<void>, afterError?: () => void): void {
  main().then(
    () => {},
    (err: unknown) => {
      // A file-system fault a user can cause (a path given that is a file, unwritable, a link loop...)
      // names the path; only a real defect shows a stack.
      const fsError = err instanceof UserError ? undefined : fsUserError(err);
      if (fsError) err = fsError;
      if (err instanceof UserError) {
        process.stderr.write(`error: ${err.message}\n`);
        process.exitCode = err.exitCode;
      } else {
        process.stderr.write(`internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exitCode = 1;
      }
      afterError?.();
    },
  );
}
