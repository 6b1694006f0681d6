/**
 * Line profiling of code written in notebook cells, for the project's Jupyter kernel
 * (notebook/kernel.ts): tslab compiles each cell with the TypeScript compiler; before it
 * does, a cell that calls `profile(...)` (or decorates a method with `@profile`) is rewritten
 * by the build's transformer (profiling/transformer.ts), so that its functions report each
 * statement's line in the cell, and the table's `File:` names the cell by its execution
 * count (`<cell 7>`). A cell with type errors is compiled as written, so that tslab reports
 * them at the lines the user wrote; what cannot be instrumented keeps whole-function timing
 * and says why.
 */
import path from 'node:path';
import ts from 'typescript';
import { profileTransformer } from '../profiling/transformer';
import { projectRoot } from '../util/paths';

/** The runtime the rewritten cells require: the very module the project's profiled code uses (one set of stats). */
const RUNTIME = path.join(__dirname, '..', 'profiling', 'runtime.js');

export interface InstrumentedCell {
  /** The cell rewritten (TypeScript), or the source unchanged when nothing is profiled in it. */
  code: string;
  /** Whether anything was instrumented. */
  changed: boolean;
  /** `profile(...)` calls that keep whole-function timing, and why. */
  skipped: { name: string; line: number; reason: string }[];
}

/** Whether a cell may mark something for profiling (a cheap test before parsing). */
export const mentionsProfile = (src: string) => /\bprofile\s*\(|@profile\b/.test(src);

/** Rewrites a cell's profiled functions for the line profiler; `file` names the cell in the tables. */
export function instrumentCell(src: string, file: string): InstrumentedCell {
  if (!mentionsProfile(src)) return { code: src, changed: false, skipped: [] };
  const sf = ts.createSourceFile('cell.ts', src, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const skipped: InstrumentedCell['skipped'] = [];
  const result = ts.transform(sf, [profileTransformer({
    root: projectRoot(), cell: { file, runtime: RUNTIME }, onSkip: (name, line, reason) => skipped.push({ name, line, reason }),
  })]);
  const out = result.transformed[0];
  const changed = out !== sf;
  const code = changed ? ts.createPrinter({ newLine: ts.NewLineKind.LineFeed }).printFile(out) : src;
  result.dispose();
  return { code, changed, skipped };
}

interface Converted { diagnostics: unknown[]; [k: string]: unknown }
interface Converter { convert(prevDecl: string, src: string): Converted; [k: string]: unknown }

let installed = false;

/**
 * Hooks the profiler into tslab (before its kernel starts): each cell of the Node
 * converter goes through instrumentCell, named after the execution count Jupyter shows.
 * tslab 1.0's modules are patched where they are looked up at call time
 * (`converter.createConverter`, `JupyterHandlerImpl.prototype.handleExecuteImpl`).
 */
export function installCellProfiler(): void {
  if (installed) return;
  installed = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const converterModule = require('tslab/dist/converter') as { createConverter(o: { isBrowser?: boolean }): Converter };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const jupyter = require('tslab/dist/jupyter') as { JupyterHandlerImpl: { prototype: { handleExecuteImpl(...a: unknown[]): unknown; execCount?: number } } };
  let cell = 0;
  const handler = jupyter.JupyterHandlerImpl.prototype;
  const execute = handler.handleExecuteImpl;
  handler.handleExecuteImpl = function (this: { execCount: number }, ...args: unknown[]) {
    cell = this.execCount + 1; // the count this execution is about to get
    return execute.apply(this, args);
  };
  const create = converterModule.createConverter;
  converterModule.createConverter = (options) => {
    const converter = create(options);
    if (options?.isBrowser) return converter;
    const convert = converter.convert.bind(converter);
    converter.convert = (prevDecl, src) => {
      if (!mentionsProfile(src)) return convert(prevDecl, src);
      const plain = convert(prevDecl, src);
      if (plain.diagnostics.length) return plain; // errors at the lines the user wrote
      let cellCode: InstrumentedCell;
      try {
        cellCode = instrumentCell(src, `<cell ${cell}>`);
      } catch (err) {
        console.warn(`line profiler: this cell could not be instrumented (${(err as Error).message}); its profiled functions get whole-function timing`);
        return plain;
      }
      for (const s of cellCode.skipped) console.warn(`line profiler: ${s.name} (line ${s.line}) is timed as a whole: ${s.reason}`);
      if (!cellCode.changed) return plain;
      const instrumented = convert(prevDecl, cellCode.code);
      if (instrumented.diagnostics.length) {
        const first = instrumented.diagnostics[0] as { messageText?: unknown; start?: { line: number } };
        console.warn(`line profiler: the instrumented cell did not compile (${String(first.messageText)}${first.start ? ` at line ${first.start.line + 1}` : ''}); ` +
          'its profiled functions get whole-function timing');
        return convert(prevDecl, src);
      }
      return instrumented;
    };
    return converter;
  };
}
