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

/**
 * Runs a CLI entry point: user errors become one clear line, anything else a stack trace.
 * `afterError` runs last on failure (e.g. to exit at once when a library may hang).
 */
export function runMain(main: () => Promise<void>, afterError?: () => void): void {
  main().then(
    () => {},
    (err: unknown) => {
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
