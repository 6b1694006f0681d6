// Compiles the project with the TypeScript compiler API (not the `tsc` binary:
// tslab ships its own TypeScript fork that may shadow node_modules/.bin/tsc).
// The API also lets us add the line-profiler transformer at emit time.
import fs from 'node:fs';
import ts from 'typescript';
import path from 'node:path';
import wabtInit from 'wabt';
import { profileTransformer } from '../lib/profiling/transformer';

const root = path.resolve(__dirname, '..');
const configPath = path.join(root, 'tsconfig.json');
const read = ts.readConfigFile(configPath, ts.sys.readFile);
if (read.error) fail([read.error]);
const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, root);
if (parsed.errors.length) fail(parsed.errors);

const dist = path.join(root, 'dist');
const program = ts.createProgram(parsed.fileNames, parsed.options);
const diagnostics = [...ts.getPreEmitDiagnostics(program)];
const written = new Set<string>();
const writeFile: ts.WriteFileCallback = (file, text, bom) => {
  written.add(path.resolve(file));
  ts.sys.writeFile(file, text, bom);
};
const emitted = program.emit(undefined, writeFile, undefined, false, transformers(program));
diagnostics.push(...emitted.diagnostics);
if (diagnostics.length) fail(diagnostics);
void compileWat().then(removeStale);

/** lib/engine/wasm/*.wat (hand-written SIMD kernels, loaded by simd-kernels.ts) → dist/lib/engine/wasm/*.wasm. */
async function compileWat(): Promise<void> {
  const wabt = await wabtInit();
  const src = path.join(root, 'lib', 'engine', 'wasm');
  const out = path.join(dist, 'lib', 'engine', 'wasm');
  fs.mkdirSync(out, { recursive: true });
  for (const file of fs.readdirSync(src).filter((f) => f.endsWith('.wat'))) {
    const mod = wabt.parseWat(file, fs.readFileSync(path.join(src, file), 'utf8'), { simd: true });
    try {
      mod.validate();
      const target = path.join(out, file.replace(/\.wat$/, '.wasm'));
      fs.writeFileSync(`${target}.tmp`, mod.toBinary({}).buffer);
      fs.renameSync(`${target}.tmp`, target);
      written.add(target);
    } finally {
      mod.destroy();
    }
  }
}

/**
 * Removes compiled files whose source is gone (a moved or deleted module), so that a stale
 * dist/test/old.test.js is never run and a stale dist/lib/old.js never imported.
 */
function removeStale(): void {
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        walk(file);
        if (!fs.readdirSync(file).length) fs.rmdirSync(file);
      } else if (!written.has(file)) {
        fs.rmSync(file, { force: true });
      }
    }
  };
  if (fs.existsSync(dist)) walk(dist);
}

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
