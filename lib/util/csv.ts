/**
 * CSV for danfo DataFrames. danfo 1.2's toCSV leaves fields containing commas or quotes
 * unquoted (a source line like `tf.tensor4d(x, [n, 28, 28, 1])` would split into several
 * columns), so fields are quoted here as RFC 4180 says.
 */
import type { DataFrame } from 'danfojs-node';

function field(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function dataFrameToCsv(df: DataFrame): string {
  const rows = df.values as unknown[][];
  return [df.columns.map(field).join(','), ...rows.map((r) => r.map(field).join(','))].join('\n') + '\n';
}
