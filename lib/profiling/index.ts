/**
 * The line profiler's entry points. `@profile` on a method, or `profile(function f() {})`
 * around a function, in lib/: the build (scripts/build.ts with ./transformer) replaces
 * them with per-line instrumentation that carries the TypeScript line numbers. Code the
 * build does not see (a function written in a notebook cell) falls back to the runtime
 * `profile` below: whole-function timing, with a note saying why.
 *
 * Recording is off by default: `--profile` or LINE_PROFILE=1 turns it on.
 */
import { recordWholeCall, register } from './runtime';

export { isProfiling, mergeStats, reset, setProfiling, snapshot } from './runtime';
export type { FunctionMeta, FunctionStats } from './runtime';
export { formatText, formatFunction, toDataFrame, toRows } from './format';
export type { LineRow } from './format';
export { ProfileSession } from './session';
export type { StoredPart, WaitRow } from './session';
export { clock, formatThreadSummary, fromTraceFile, mergeTimelines, recordCounter, recordSpan, summarizeTimelines, toTraceFile } from './trace';
export type { Span, ThreadSummary, ThreadTimeline, TraceEvent, TraceFile } from './trace';
export { absorb, takeThreadRecord } from './runtime';
export type { ThreadRecord } from './runtime';

let wholeCounter = 0;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFunction = (this: any, ...args: any[]) => any;

/**
 * Whole-function timing for functions the build did not instrument. Works as a wrapper,
 * `profile(function f() {})`, and as a method decorator, `@profile`, in either decorator mode:
 * standard (TC39: value and context) and legacy (`experimentalDecorators`, as tslab compiles
 * cells: target, key and descriptor). `why` says in the function's table why its lines are not
 * timed (default: not built by the project); `givenName` names an anonymous function (the
 * variable it is assigned to).
 */
export function profile<F extends AnyFunction>(fn: F, context?: ClassMethodDecoratorContext, why?: string, givenName?: string): F;
export function profile<T>(target: object, key: string | symbol, descriptor: TypedPropertyDescriptor<T>): TypedPropertyDescriptor<T>;
export function profile(...args: unknown[]): unknown {
  if (isLegacyDecoratorCall(args)) {
    const [, key, descriptor] = args;
    if (typeof descriptor.value !== 'function') return descriptor; // a getter or setter: nothing to wrap
    return { ...descriptor, value: wholeFunction(descriptor.value as AnyFunction, String(key)) };
  }
  const [fn, context, why, givenName] = args as [AnyFunction, ClassMethodDecoratorContext | undefined, string | undefined, string | undefined];
  return wholeFunction(fn, context ? String(context.name) : fn.name || givenName || 'anonymous', why);
}

/** `(target, key, descriptor)`: a legacy decorator's call (a standard one passes a function and a context object). */
function isLegacyDecoratorCall(args: unknown[]): args is [object, string | symbol, PropertyDescriptor] {
  return args.length === 3 && (typeof args[1] === 'string' || typeof args[1] === 'symbol') && typeof args[2] === 'object' && args[2] !== null;
}

function wholeFunction<F extends AnyFunction>(fn: F, name: string, why?: string): F {
  const id = `whole:${++wholeCounter}:${name}`;
  register({ id, file: '<not built by the project: notebook cell or script>', name, line: 1, source: fn.toString().split('\n'), wholeFunction: true,
    ...(why ? { note: `Note: whole-function timing only: ${why}.` } : {}) });
  const wrapped = function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    const result = fn.apply(this, args);
    if (result instanceof Promise) {
      return result.finally(() => recordWholeCall(id, (performance.now() - t0) / 1000));
    }
    recordWholeCall(id, (performance.now() - t0) / 1000);
    return result;
  };
  Object.defineProperty(wrapped, 'name', { value: name });
  return wrapped as unknown as F;
}
