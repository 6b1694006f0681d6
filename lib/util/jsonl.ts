import fs from 'node:fs';

/** The objects of a JSON-lines file (one per line); [] when the file does not exist. */
export function readJsonLines<T>(file: string): T[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}
