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
  const compile = (name: string, text: string, target: string) => {
    const features = { simd: true, threads: true };
    const mod = wabt.parseWat(name, text, features);
    try {
      mod.validate(features);
      fs.writeFileSync(`${target}.tmp`, mod.toBinary({}).buffer);
      fs.renameSync(`${target}.tmp`, target);
      written.add(target);
    } finally {
      mod.destroy();
    }
  };
  for (const file of fs.readdirSync(src).filter((f) => f.endsWith('.wat'))) {
    const text = fs.readFileSync(path.join(src, file), 'utf8');
    compile(file, text, path.join(out, file.replace(/\.wat$/, '.wasm')));
    // The same kernels importing a shared memory: tfjs's memory once engine/wasm/shared-memory.ts
    // has made it shared, which kernel threads then import too (engine/wasm/kernel-pool.ts).
    const sharedImport = text.replace(/\(import "env" "memory" \(memory (\d+)\)\)/, '(import "env" "memory" (memory $1 65536 shared))');
    if (sharedImport !== text) compile(file, sharedImport, path.join(out, file.replace(/\.wat$/, '-shared.wasm')));
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
