import fs from 'node:fs';
import { UserError } from './errors';

/**
 * The objects of a JSON-lines file (one per line); [] when the file does not exist. A line
 * that is not a JSON object is an error naming the file and the line.
 */
export function readJsonLines<T>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').flatMap((l, i) => {
    if (!l.trim()) return [];
    let value: unknown;
    try {
      value = JSON.parse(l);
    } catch (err) {
      throw new UserError(`${file}, line ${i + 1}: not valid JSON (${(err as Error).message}): the file is damaged`);
    }
    // Every record of these files is an object: `null`, a number or a list is damage too.
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      throw new UserError(`${file}, line ${i + 1}: expected a JSON object, got ${l.trim().slice(0, 40)}: the file is damaged`);
    }
    return [value as T];
  });
}

/** A JSON file's value; an unreadable or malformed file is an error naming it. */
export function readJsonFile<T>(file: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new UserError(`${file}: not valid JSON (${(err as Error).message}): the file is damaged`);
  }
}
