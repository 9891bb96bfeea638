import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { buildRecords, type RecordsBuildTask } from './records-build.js';
import type { RecordRowsSource } from './unit-records.js';
import { type NeuronRecordAccumulator, restoreAccumulator, snapshotAccumulator } from './unit-records.js';

const ROLE = 'loupe-records';

type Typed = Float32Array | Float64Array | Int32Array;
interface Request {
  id: number;
  width: number;
  tensors: Record<string, Typed>;
  metadata: Record<string, string>;
  task: RecordsBuildTask;
}
type Reply = { id: number; set: RecordRowsSource } | { id: number; error: string };

/**
 * The records pass on worker threads, several hooks at once: reading a hook's sample back and
 * histogramming it is a second or so of one core per 3,072 neurons, and the main thread meanwhile only
 * writes rows. Each hook's accumulator crosses as its snapshot (the same state a checkpoint writes).
 */
export class RecordsThreads {
  private readonly idle: Worker[];
  private readonly queue: { request: Omit<Request, 'id'>; settle: Settle }[] = [];
  private readonly running = new Map<Worker, { id: number; settle: Settle }>();
  private nextId = 0;
  private failure: Error | null = null;

  private constructor(private readonly workers: Worker[]) {
    this.idle = [...workers];
    for (const worker of workers) {
      worker.on('message', (reply: Reply) => this.settle(worker, reply));
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => this.fail(new Error(`records thread exited (code ${code})`)));
    }
  }

  /**
   * `count` threads, or null where the built module is missing (TypeScript sources run under a test
   * runner; worker threads load JavaScript only), in which case the caller builds in process.
   */
  static start(count: number): RecordsThreads | null {
    const file = builtModule();
    if (!file) return null;
    // no inherited flags: a test runner's `--conditions source` would point the thread's imports of
    // workspace packages at TypeScript again
    const workers = Array.from(
      { length: count },
      () => new Worker(file, { workerData: { role: ROLE }, execArgv: [] }),
    );
    return new RecordsThreads(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  build(accumulator: NeuronRecordAccumulator, task: RecordsBuildTask): Promise<RecordRowsSource> {
    if (this.failure) return Promise.reject(this.failure);
    const snapshot = snapshotAccumulator(accumulator);
    const tensors = Object.fromEntries(snapshot.tensors.map((t) => [t.name, t.data]));
    const request = { width: accumulator.width, tensors, metadata: snapshot.metadata, task };
    return new Promise((resolve, reject) => {
      this.queue.push({ request, settle: { resolve, reject } });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('records threads closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const worker = this.idle.pop()!;
      const { request, settle } = this.queue.shift()!;
      const id = this.nextId++;
      this.running.set(worker, { id, settle });
      const buffers = new Set(Object.values(request.tensors).map((t) => t.buffer as ArrayBuffer));
      worker.postMessage({ id, ...request } satisfies Request, [...buffers]);
    }
  }

  private settle(worker: Worker, reply: Reply): void {
    const job = this.running.get(worker);
    if (!job || job.id !== reply.id) return;
    this.running.delete(worker);
    this.idle.push(worker);
    if ('error' in reply) job.settle.reject(new Error(reply.error));
    else job.settle.resolve(reply.set);
    this.dispatch();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const { settle } of this.running.values()) settle.reject(this.failure);
    for (const { settle } of this.queue) settle.reject(this.failure);
    this.running.clear();
    this.queue.length = 0;
  }
}

interface Settle {
  resolve: (set: RecordRowsSource) => void;
  reject: (error: Error) => void;
}

/** This module as JavaScript: itself when built, its build output when running from source. */
function builtModule(): string | null {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts') ? here.replace(/\/src\/(.*)\.ts$/, '/dist/$1.js') : here;
  return existsSync(file) ? file : null;
}

async function serve(): Promise<void> {
  parentPort!.on('message', async (request: Request) => {
    try {
      const accumulator = restoreAccumulator(
        request.width,
        (name) => request.tensors[name],
        request.metadata,
      );
      const set = await buildRecords(accumulator, request.task);
      const buffers = Object.values(set)
        .filter((v): v is Typed => ArrayBuffer.isView(v))
        .map((v) => v.buffer as ArrayBuffer);
      parentPort!.postMessage({ id: request.id, set } satisfies Reply, [...new Set(buffers)]);
    } catch (error) {
      parentPort!.postMessage({ id: request.id, error: (error as Error).message } satisfies Reply);
    }
  });
}

if (!isMainThread && (workerData as { role?: string } | null)?.role === ROLE) void serve();
