import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import ort from 'onnxruntime-node';

/**
 * What callers of openSession hold: the part of ort.InferenceSession this project uses, with `run`
 * taking per-call options for its thread hop (see ThreadedSession).
 */
export interface RuntimeSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Feeds, fetches?: readonly string[], options?: RunOptions): Promise<Outputs>;
  release(): Promise<void>;
}

export type Feeds = Record<string, ort.Tensor>;
export type Outputs = Record<string, ort.Tensor>;

export interface RunOptions {
  /**
   * Feeds whose buffers are handed to the thread instead of copied (they are then unusable here):
   * `true` for every feed, or their names. Only feeds that own their whole buffer are handed over; a
   * view into a larger buffer is copied (its view only), so a batch cut from a shard never moves the shard.
   */
  transfer?: boolean | readonly string[];
  /**
   * Feeds handed over for the run and handed back after it: when the run settles (or fails), their
   * entries in the caller's `feeds` record are replaced by tensors over the same memory, returned. For
   * inputs the caller needs again after the run, without copying them either way.
   */
  lend?: readonly string[];
  /**
   * Stops waiting when aborted, rejecting with the signal's reason: a run still queued never starts; a
   * run already inside ONNX Runtime (which cannot be interrupted) finishes on the thread and its
   * result is dropped, after which the session serves the next run as usual.
   */
  signal?: AbortSignal;
}

interface WireTensor {
  type: ort.Tensor.Type;
  dims: number[];
  data: ort.Tensor.DataType;
}

type Request =
  | { op: 'open'; model: string | Uint8Array; options: ort.InferenceSession.SessionOptions }
  | { op: 'run'; feeds: Record<string, WireTensor>; fetches?: readonly string[]; lend: readonly string[] }
  | { op: 'release' };

/** `lent`: the run's lent feeds, handed back whether it succeeded or not */
type Reply =
  | { ok: true; inputNames: string[]; outputNames: string[] }
  | { ok: true; outputs: Record<string, WireTensor>; lent?: Record<string, WireTensor> }
  | { ok: true }
  | { ok: false; message: string; lent?: Record<string, WireTensor> };

interface Job {
  request: Request;
  transfer: ArrayBuffer[];
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  signal?: AbortSignal;
  giveBack?: (lent: Record<string, WireTensor> | undefined) => void;
}

/**
 * One ONNX Runtime session on its own worker thread. onnxruntime-node runs a session synchronously on
 * the thread that calls it (`run` only defers the call with setImmediate), so on the main thread every
 * forward pass or training step froze the service's event loop for its whole length: gRPC calls,
 * health checks and job heartbeats waited seconds. Here the main thread only posts feeds and receives
 * outputs; outputs come back as transferred buffers (no copy), feeds are copied unless the caller hands
 * them over (RunOptions.transfer). Requests go to the thread one at a time, so a queued run can still
 * be cancelled before it starts.
 */
export class ThreadedSession implements RuntimeSession {
  private readonly queue: Job[] = [];
  private current: Job | null = null;
  private failure: Error | null = null;
  inputNames: readonly string[] = [];
  outputNames: readonly string[] = [];

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: Reply) => this.settle(reply));
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`onnx runtime session thread exited (code ${code})`)));
    worker.unref(); // an idle session never holds the process open, as an in-process one does not
  }

  /** Starts a thread and opens the session there; rejects with ONNX Runtime's own error if it cannot. */
  static async open(
    model: string | Uint8Array,
    options: ort.InferenceSession.SessionOptions,
  ): Promise<ThreadedSession> {
    const ortEntry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const worker = new Worker(`(${sessionThreadMain.toString()})()`, {
      eval: true,
      workerData: { ortEntry },
    });
    const session = new ThreadedSession(worker);
    // an in-memory graph is copied once (its view only), then handed over
    const graph = typeof model === 'string' ? model : model.slice();
    const transfer = typeof graph === 'string' ? [] : [graph.buffer as ArrayBuffer];
    try {
      const reply = (await session.send({ op: 'open', model: graph, options }, transfer)) as {
        inputNames: string[];
        outputNames: string[];
      };
      session.inputNames = reply.inputNames;
      session.outputNames = reply.outputNames;
      return session;
    } catch (error) {
      await worker.terminate();
      throw error;
    }
  }

  async run(feeds: Feeds, fetches?: readonly string[], options: RunOptions = {}): Promise<Outputs> {
    const lend = options.lend ?? [];
    const handOver = (name: string) =>
      options.transfer === true ||
      lend.includes(name) ||
      (Array.isArray(options.transfer) && options.transfer.includes(name));
    const { wire, transfer } = toWire(feeds, handOver);
    const request: Request = { op: 'run', feeds: wire, fetches, lend };
    const giveBack = (lent: Record<string, WireTensor> | undefined) => {
      for (const [name, t] of Object.entries(lent ?? {})) feeds[name] = fromWire(t);
    };
    const reply = await this.send(request, transfer, options.signal, giveBack);
    const outputs: Outputs = {};
    for (const [name, t] of Object.entries((reply as { outputs: Record<string, WireTensor> }).outputs)) {
      outputs[name] = fromWire(t);
    }
    return outputs;
  }

  /** Waits for a run in progress, frees the session and ends its thread; queued runs are rejected. */
  async release(): Promise<void> {
    if (this.failure) return;
    for (const job of this.queue.splice(0)) job.reject(new Error('onnx runtime session released'));
    await this.send({ op: 'release' }, []).catch(() => undefined);
    this.failure = new Error('onnx runtime session released');
    await this.worker.terminate();
  }

  private send(
    request: Request,
    transfer: ArrayBuffer[],
    signal?: AbortSignal,
    giveBack?: (lent: Record<string, WireTensor> | undefined) => void,
  ): Promise<Reply> {
    if (this.failure) return Promise.reject(this.failure);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Reply>((resolve, reject) => {
      const job: Job = { request, transfer, resolve, reject, signal, giveBack };
      if (signal) {
        const onAbort = () => {
          const queued = this.queue.indexOf(job);
          if (queued >= 0) this.queue.splice(queued, 1);
          // a job already on the thread stays `current` until its reply, which is then dropped
          job.resolve = () => {};
          job.reject = () => {};
          reject(signal.reason);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        const settle = (done: () => void) => () => {
          signal.removeEventListener('abort', onAbort);
          done();
        };
        job.resolve = (reply) => settle(() => resolve(reply))();
        job.reject = (error) => settle(() => reject(error))();
      }
      this.queue.push(job);
      this.dispatch();
    });
  }

  private dispatch(): void {
    if (this.current || this.queue.length === 0) return;
    const job = this.queue.shift()!;
    this.current = job;
    this.worker.ref();
    this.worker.postMessage(job.request, job.transfer);
  }

  private settle(reply: Reply): void {
    const job = this.current;
    this.current = null;
    if (this.queue.length === 0) this.worker.unref();
    if (job) {
      if ('lent' in reply) job.giveBack?.(reply.lent);
      if (reply.ok) job.resolve(reply);
      else job.reject(new Error(reply.message));
    }
    this.dispatch();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const jobs = [...(this.current ? [this.current] : []), ...this.queue];
    this.current = null;
    this.queue.length = 0;
    for (const job of jobs) job.reject(this.failure);
  }
}

function fromWire(t: WireTensor): ort.Tensor {
  return new ort.Tensor(t.type, t.data as ort.Tensor.DataTypeMap[ort.Tensor.Type], t.dims);
}

/** Feeds as plain tensors for postMessage, and the buffers to hand over with them. */
function toWire(
  feeds: Feeds,
  given: (name: string) => boolean,
): { wire: Record<string, WireTensor>; transfer: ArrayBuffer[] } {
  const handOver = new Set<ArrayBuffer>();
  const wire: Record<string, WireTensor> = {};
  for (const [name, tensor] of Object.entries(feeds)) {
    let data = tensor.data;
    if (ArrayBuffer.isView(data)) {
      const view = data as Exclude<ort.Tensor.DataType, string[]>;
      const whole =
        view.buffer instanceof ArrayBuffer &&
        view.byteOffset === 0 &&
        view.byteLength === view.buffer.byteLength;
      // a copy made here is handed over too: structured cloning would copy it a second time
      const sent = whole && given(name) ? view : view.slice();
      handOver.add(sent.buffer as ArrayBuffer);
      data = sent;
    }
    wire[name] = { type: tensor.type, dims: [...tensor.dims], data };
  }
  return { wire, transfer: [...handOver] };
}

/**
 * The thread's whole program. It runs from its source text (`eval`), so it may use nothing from this
 * module's scope: only `require` of Node's built-ins and of onnxruntime-node by the path it is given.
 */
function sessionThreadMain(): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const runtime = require((workerData as { ortEntry: string }).ortEntry) as typeof ort;
  let session: ort.InferenceSession | null = null;

  type Wire = { type: ort.Tensor.Type; dims: number[]; data: ort.Tensor.DataType };
  type Message =
    | { op: 'open'; model: string | Uint8Array; options: ort.InferenceSession.SessionOptions }
    | { op: 'run'; feeds: Record<string, Wire>; fetches?: string[]; lend: string[] }
    | { op: 'release' };

  /** The run's lent feeds, to hand back with its reply (the same memory: nothing is copied). */
  const lentOf = (message: Message) => {
    const lent: Record<string, Wire> = {};
    if (message.op === 'run') for (const name of message.lend) lent[name] = message.feeds[name];
    return lent;
  };
  const buffersOf = (tensors: Record<string, Wire>[]) => {
    const buffers = new Set<ArrayBuffer>();
    for (const group of tensors)
      for (const { data } of Object.values(group))
        if (ArrayBuffer.isView(data) && data.buffer instanceof ArrayBuffer) buffers.add(data.buffer);
    return [...buffers];
  };

  parentPort!.on('message', async (message: Message) => {
    try {
      if (message.op === 'open') {
        session =
          typeof message.model === 'string'
            ? await runtime.InferenceSession.create(message.model, message.options)
            : await runtime.InferenceSession.create(message.model, message.options);
        parentPort!.postMessage({
          ok: true,
          inputNames: [...session.inputNames],
          outputNames: [...session.outputNames],
        });
      } else if (message.op === 'run') {
        const feeds: Record<string, ort.Tensor> = {};
        for (const [name, t] of Object.entries(message.feeds)) {
          feeds[name] = new runtime.Tensor(t.type, t.data as never, t.dims);
        }
        const out = message.fetches ? await session!.run(feeds, message.fetches) : await session!.run(feeds);
        const outputs: Record<string, Wire> = {};
        for (const [name, tensor] of Object.entries(out)) {
          outputs[name] = { type: tensor.type, dims: [...tensor.dims], data: tensor.data };
        }
        const lent = lentOf(message);
        parentPort!.postMessage({ ok: true, outputs, lent }, buffersOf([outputs, lent]));
      } else {
        await session?.release();
        session = null;
        parentPort!.postMessage({ ok: true });
      }
    } catch (error) {
      const lent = lentOf(message);
      const text = String((error as Error)?.message ?? error);
      parentPort!.postMessage({ ok: false, message: text, lent }, buffersOf([lent]));
    }
  });
}
