/** Option parsers for the command-line tools: bad values name the value and what was expected. */
import { Command, InvalidArgumentError } from 'commander';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a positive integer, got '${value}'.`);
  }
  return n;
}

export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected an integer >= 0, got '${value}'.`);
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a number > 0, got '${value}'.`);
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a number >= 0, got '${value}'.`);
  return n;
}

export function fraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`expected a number in [0, 1), got '${value}'.`);
  return n;
}

/** Worker counts separated by commas ("1,8"), at least `min` of them, without repeats. */
export function workerCounts(value: string, min = 1): number[] {
  const list = value.split(',').map((v) => v.trim());
  const counts = [...new Set(list.map(Number))];
  if (counts.length < min || list.some((v) => !/^\d+$/.test(v))) {
    throw new InvalidArgumentError(`expected ${min > 1 ? `at least ${min} different ` : ''}worker counts separated by commas (e.g. 1,8), got '${value}'.`);
  }
  return counts;
}

/** The exit code of a bad option or argument, as every tool's --help says. */
export const EXIT_USAGE = 2;

/**
 * A command-line program: commander's own, but a bad option or argument exits with 2 (commander
 * uses 1, which the tools keep for internal errors); --help and --version still exit 0.
 */
export function command(name: string): Command {
  return new Command(name).exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE));
}
