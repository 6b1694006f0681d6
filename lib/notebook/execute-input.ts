/**
 * What Jupyter's clients expect of an execution and tslab 1.0 does not do, added by the project's
 * kernel:
 *
 * - Execution counts in executed notebooks: Jupyter's protocol has a kernel announce each
 * execution on IOPub (`execute_input`, with its execution count) and nbclient/nbconvert take
 * the count from there; tslab 1.0 never sends it, so headless copies read `In [ ]:` everywhere
 * while the line profiler names cells `<cell N>` by that count.
 * - A failed execution's reply names the error (ename, evalue, traceback: nbconvert printed
 *   `<Error>: ` with nothing after it); tslab writes the error to stderr only, so it is taken from there.
 * - `stop_on_error: false` (nbconvert --allow-errors) is honoured: tslab cancels every execution
 *   queued after a failure, so the following cells came out blank without an error.
 *
 * tslab's modules are patched where they are looked up at call time (as notebook/cell-profiler.ts
 * does): the server's `handleExecute` attaches an announcer to the request, and the handler's
 * `handleExecuteImpl`, which runs in execution order, calls it with the count it is about to use.
 */

interface ZmqMessage {
  content: { code?: string; silent?: boolean };
  createReply(): { header: { msg_type: string }; content: unknown; signAndSend(key: string, socket: unknown): void };
}
interface Server { connInfo: { key: string }; iopub: unknown; handleExecute(sock: unknown, msg: ZmqMessage): Promise<void> }
type WriteStream = (name: string, text: string) => void;
interface Request { code?: string; stop_on_error?: boolean; [ANNOUNCE]?: (count: number) => void; [FAILED]?: true; [STDERR]?: string }
interface Reply { status: string; execution_count?: number; ename?: string; evalue?: string; traceback?: string[] }
interface Handler {
  execCount: number;
  handleExecute(req: Request, writeStream: WriteStream, ...rest: unknown[]): Promise<Reply>;
  handleExecuteImpl(req: Request, writeStream: WriteStream, ...rest: unknown[]): Promise<unknown>;
}

const ANNOUNCE = Symbol('announce execute_input');
/** Set on a request whose execution failed with stop_on_error false (its failure resolved, not thrown). */
const FAILED = Symbol('failed, queue kept');
/** What a failed execution wrote to stderr: its error message. */
const STDERR = Symbol('stderr of a failed execution');

let installed = false;

export function installExecuteInput(): void {
  if (installed) return;
  installed = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const jupyter = require('tslab/dist/jupyter') as { ZmqServer: { prototype: Server }; JupyterHandlerImpl: { prototype: Handler } };
  const server = jupyter.ZmqServer.prototype;
  const serve = server.handleExecute;
  server.handleExecute = function (this: Server, sock, msg) {
    if (!msg.content.silent) {
      Object.defineProperty(msg.content, ANNOUNCE, {
        enumerable: false,
        value: (count: number) => {
          const input = msg.createReply();
          input.header.msg_type = 'execute_input';
          input.content = { code: msg.content.code ?? '', execution_count: count };
          input.signAndSend(this.connInfo.key, this.iopub);
        },
      });
    }
    return serve.call(this, sock, msg);
  };
  const handler = jupyter.JupyterHandlerImpl.prototype;
  const execute = handler.handleExecuteImpl;
  handler.handleExecuteImpl = async function (this: Handler, req, writeStream, ...rest) {
    req[ANNOUNCE]?.(this.execCount + 1); // the count this execution is about to get
    let stderr = '';
    const capture: WriteStream = (name, text) => {
      if (name === 'stderr') stderr += text;
      writeStream(name, text);
    };
    try {
      return await execute.call(this, req, capture, ...rest);
    } catch (failure) {
      req[STDERR] = stderr;
      if (req.stop_on_error !== false || !isExecutionCount(failure)) throw failure;
      req[FAILED] = true; // resolved, not thrown: tslab's queue cancels whatever follows a rejection
      return failure;
    }
  };
  const reply = handler.handleExecute;
  handler.handleExecute = async function (this: Handler, req, ...rest) {
    const content = await reply.call(this, req, ...rest);
    if (req[FAILED] !== undefined) content.status = 'error';
    if (content.status === 'error') Object.assign(content, errorOf(req[STDERR] ?? ''));
    return content;
  };
}

/** tslab rejects a failed execution with its ExecutionCount (a class it does not export). */
const isExecutionCount = (v: unknown): boolean => typeof v === 'object' && v !== null && typeof (v as { count?: unknown }).count === 'number';

/** ename, evalue and traceback from what the failed execution wrote to stderr (`TypeError: ...`, or compile errors). */
export function errorOf(stderr: string): { ename: string; evalue: string; traceback: string[] } {
  const lines = stderr.trimEnd().split('\n').filter((l) => l.trim());
  const named = lines.map((l) => /^(?:Uncaught )?([A-Z]\w*(?:Error|Exception)): (.*)$/.exec(l.trim())).find(Boolean);
  if (named) return { ename: named[1], evalue: named[2], traceback: lines };
  if (!lines.length) return { ename: 'Error', evalue: 'the cell failed without a message', traceback: [] };
  return { ename: 'Error', evalue: lines.join('\n'), traceback: lines };
}
