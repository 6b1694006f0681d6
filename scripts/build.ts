// Compiles the project with the TypeScript compiler API (not the `tsc` binary:
// tslab ships its own TypeScript fork that may shadow node_modules/.bin/tsc).
// The API also lets us add the line-profiler transformer at emit time.
import ts from 'typescript';
import path from 'node:path';
import { profileTransformer } from '../lib/profiling/transformer';

const root = path.resolve(__dirname, '..');
const configPath = path.join(root, 'tsconfig.json');
const read = ts.readConfigFile(configPath, ts.sys.readFile);
if (read.error) fail([read.error]);
const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root);
if (parsed.errors.length) fail(parsed.errors);

const program = ts.createProgram(parsed.fileNames, parsed.options);
const diagnostics = [...ts.getPreEmitDiagnostics(program)];
const emitted = program.emit(undefined, undefined, undefined, false, transformers(program));
diagnostics.push(...emitted.diagnostics);
if (diagnostics.length) fail(diagnostics);

/** The line profiler instruments @profile / profile(function ...) in the project's own code. */
function transformers(_program: ts.Program): ts.CustomTransformers {
  return { before: [profileTransformer({ root })] };
}

function fail(diags: readonly ts.Diagnostic[]): never {
  const host: ts.FormatDiagnosticsHost = {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => root,
    getNewLine: () => '\n',
  };
  process.stderr.write(ts.formatDiagnosticsWithColorAndContext(diags, host));
  process.exit(1);
}
