/**
 * Writing files so that nothing is half-written and a failure says what to do: an atomic
 * write goes to a temporary name in the same folder and is renamed into place, so the
 * previous version stays intact until the new one is complete; a write that the file
 * system refuses (full, read-only, no permission) becomes a UserError naming the path,
 * the size and the cause.
 */
import fs from 'node:fs';
import path from 'node:path';
import { FS_CAUSES, UserError } from './errors';

const size = (bytes: number) => (bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`);

/** A file-system refusal as a UserError naming the file, the size to be written and the cause; anything else as it is. */
export function writeError(err: unknown, file: string, bytes?: number): Error {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (!(code in FS_CAUSES)) return err as Error;
  return new UserError(`cannot write ${file}${bytes !== undefined ? ` (${size(bytes)})` : ''}: ${FS_CAUSES[code]} (${code})`);
}

/** Writes a file atomically: a temporary name in the same folder, then a rename. */
export function writeFileAtomic(file: string, bytes: Buffer | string): void {
  const length = typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw writeError(err, file, length);
  }
}

/** Appends to a file; a refusal names the file. */
export function appendFile(file: string, text: string): void {
  try {
    fs.appendFileSync(file, text);
  } catch (err) {
    throw writeError(err, file, Buffer.byteLength(text));
  }
}
