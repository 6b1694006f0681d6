/**
 * tfjs-backend-wasm on a shared WebAssembly memory, so that kernel threads can work on its
 * tensors in place (kernel-pool.ts). tfjs turns its own threaded build off in Node (its
 * workers load from blob: URLs), and its SIMD build defines a private memory. Before the
 * backend instantiates that build, this rewrites the module's memory definition into an
 * import of a shared memory of the same size limits: nothing else in the module changes
 * (memory index 0 stays memory 0; memories have their own index space), and tfjs's glue
 * finds the memory under the same export. Where the rewrite does not apply (another tfjs
 * build), the backend loads as shipped and the kernels run on one thread.
 */

interface Section { id: number; start: number; body: number; end: number }

const IMPORT_SECTION = 2;
const MEMORY_SECTION = 5;
const MEMORY_KIND = 2;
/** Limits flags: 1 = a maximum follows, 2 = shared. */
const HAS_MAX = 1;
const SHARED = 2;
/** 4 GiB in 64 KiB pages, wasm32's whole address space (the maximum a shared memory must declare). */
const ALL_PAGES = 65536;

function readUleb(bytes: Uint8Array, at: number): [number, number] {
  let value = 0;
  let shift = 0;
  let byte: number;
  do {
    byte = bytes[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}

function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
}

const wasmName = (s: string) => [...uleb(s.length), ...Buffer.from(s, 'utf8')];

function sections(bytes: Uint8Array): Section[] {
  const found: Section[] = [];
  for (let at = 8; at < bytes.length;) {
    const [size, body] = readUleb(bytes, at + 1);
    found.push({ id: bytes[at], start: at, body, end: body + size });
    at = body + size;
  }
  return found;
}

export interface SharedMemoryModule { bytes: Uint8Array; initialPages: number; maximumPages: number }

/**
 * The module with its one defined memory turned into an import `env.memory` of a shared
 * memory with the same limits (4 GiB at most where it declared none); undefined when the
 * module does not define exactly one unshared memory or has no import section.
 */
export function importSharedMemory(module: Uint8Array): SharedMemoryModule | undefined {
  const all = sections(module);
  const memory = all.find((s) => s.id === MEMORY_SECTION);
  const imports = all.find((s) => s.id === IMPORT_SECTION);
  if (!memory || !imports) return undefined;
  const [count, limits] = readUleb(module, memory.body);
  const flags = module[limits];
  if (count !== 1 || flags & SHARED) return undefined;
  const [initialPages, next] = readUleb(module, limits + 1);
  const maximumPages = flags & HAS_MAX ? readUleb(module, next)[0] : ALL_PAGES;
  const [importCount, firstImport] = readUleb(module, imports.body);
  const entry = [...wasmName('env'), ...wasmName('memory'), MEMORY_KIND, HAS_MAX | SHARED, ...uleb(initialPages), ...uleb(maximumPages)];
  const body = [...uleb(importCount + 1), ...module.subarray(firstImport, imports.end), ...entry];
  const parts = all.filter((s) => s.id !== MEMORY_SECTION).map((s) => s.id === IMPORT_SECTION
    ? Uint8Array.from([IMPORT_SECTION, ...uleb(body.length), ...body])
    : module.subarray(s.start, s.end));
  return { bytes: Buffer.concat([module.subarray(0, 8), ...parts]), initialPages, maximumPages };
}

/** Whether a value is the import object emscripten's glue gives WebAssembly.instantiate (tfjs's module). */
function isEmscriptenImports(imports: unknown): imports is { env: Record<string, unknown> } {
  const i = imports as Record<string, unknown> | undefined;
  return !!i && typeof i.env === 'object' && typeof i.wasi_snapshot_preview1 === 'object';
}

/**
 * Runs `load` (which initialises the wasm backend) with tfjs's module given a shared memory.
 * Only the instantiation of a module from bytes with emscripten's imports is changed, and
 * only while `load` runs.
 */
export async function withSharedWasmMemory<T>(load: () => Promise<T>): Promise<T> {
  const instantiate = WebAssembly.instantiate;
  const patched = function (this: unknown, source: unknown, imports?: unknown) {
    if (isEmscriptenImports(imports) && (source instanceof ArrayBuffer || ArrayBuffer.isView(source))) {
      const bytes = source instanceof ArrayBuffer ? new Uint8Array(source) : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
      const shared = importSharedMemory(bytes);
      if (shared) {
        const memory = new WebAssembly.Memory({ initial: shared.initialPages, maximum: shared.maximumPages, shared: true });
        imports.env.memory = memory;
        return instantiate.call(WebAssembly, shared.bytes, imports as WebAssembly.Imports);
      }
    }
    return (instantiate as (...args: unknown[]) => unknown).call(WebAssembly, source, imports);
  };
  WebAssembly.instantiate = patched as typeof WebAssembly.instantiate;
  try {
    return await load();
  } finally {
    WebAssembly.instantiate = instantiate;
  }
}
