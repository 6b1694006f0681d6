/**
 * The parts of the WebAssembly JS API this project uses: Node has all of it, and
 * TypeScript declares it only in the DOM library, which a Node project leaves out.
 */
declare namespace WebAssembly {
  type Imports = Record<string, Record<string, unknown>>;
  class Memory {
    constructor(descriptor: { initial: number; maximum?: number; shared?: boolean });
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(pages: number): number;
  }
  class Module { constructor(bytes: Uint8Array) }
  class Instance {
    constructor(module: Module, imports: Imports);
    readonly exports: Record<string, unknown>;
  }
  function instantiate(bytes: ArrayBuffer | ArrayBufferView, imports?: Imports): Promise<{ module: Module; instance: Instance }>;
  function instantiate(module: Module, imports?: Imports): Promise<Instance>;
}
