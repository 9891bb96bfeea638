import { Worker } from 'node:worker_threads';

/**
 * Writes whole files on a worker thread, bypassing the page cache (O_DIRECT) where the file system
 * allows it. Made for capture jobs, which write gigabytes of activation shards while the model runs:
 * - writes driven by the main event loop (one continuation per chunk) wait for whatever else runs
 *   there (before sessions moved to their own threads, the length of every forward pass); this
 *   thread's loop does not;
 * - buffered writes of that volume cost kernel time (page-cache copies, then reclaim once memory is
 *   full) taken from the two cores the forward pass uses: measured here 0.4–2.9 s of CPU per 900 MB,
 *   against about 0.2 s for a copy into an aligned buffer and an O_DIRECT write.
 * Each file goes to `<path>.tmp-<pid>`, is fsynced, then renamed into place, so a reader (or a resumed
 * job) never sees a partial file under the final name. Files are written one at a time, in order.
 */
export class FileWriterThread {
  private readonly pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private nextId = 0;
  private failure: Error | null = null;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (reply: { id: number; error?: string; code?: string }) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref(); // an idle writer never holds the process open
      if (reply.error === undefined) waiter?.resolve();
      else waiter?.reject(Object.assign(new Error(reply.error), { code: reply.code }));
    });
    worker.on('error', (error) => this.fail(error));
    worker.on('exit', (code) => this.fail(new Error(`file writer thread exited (code ${code})`)));
    worker.unref();
  }

  static start(): FileWriterThread {
    return new FileWriterThread(new Worker(`(${writerThreadMain.toString()})()`, { eval: true }));
  }

  /**
   * Writes `views` back to back as the file at `path`. The views' buffers are copied to the thread
   * unless listed in `transfer`, which hands them over (they are then unusable here): pass the buffers
   * behind the views when nothing else reads them.
   */
  write(path: string, views: Uint8Array[], transfer: ArrayBuffer[] = []): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    // one entry per distinct buffer, so a buffer shared by many views crosses once
    const buffers: ArrayBufferLike[] = [];
    const index = new Map<ArrayBufferLike, number>();
    const pieces = views.map((view) => {
      let at = index.get(view.buffer);
      if (at === undefined) {
        at = buffers.push(view.buffer) - 1;
        index.set(view.buffer, at);
      }
      return [at, view.byteOffset, view.byteLength];
    });
    const tmp = `${path}.tmp-${process.pid}`;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, path, tmp, buffers, pieces }, transfer);
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('file writer thread closed');
    await this.worker.terminate();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.pending.values()) waiter.reject(this.failure);
    this.pending.clear();
  }
}

/**
 * The thread's whole program. It runs from its source text (`eval`), so it may use nothing from this
 * module's scope: only `require` of Node's built-ins.
 */
function writerThreadMain(): void {
  const { parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const fs = require('node:fs') as typeof import('node:fs');
  const BLOCK = 4096; // O_DIRECT transfers: offset, length and address aligned to the device block
  const STAGE = 32 * 1024 * 1024;
  // WebAssembly memory is page-aligned, which O_DIRECT needs of the source address too (the global is
  // there in Node; this project's type libraries do not declare it)
  const { WebAssembly } = globalThis as unknown as {
    WebAssembly: { Memory: new (pages: { initial: number }) => { buffer: ArrayBuffer } };
  };
  const stage = new Uint8Array(new WebAssembly.Memory({ initial: STAGE / 65536 }).buffer, 0, STAGE);
  const { O_WRONLY, O_CREAT, O_TRUNC, O_DIRECT } = fs.constants;

  type Message = { id: number; path: string; tmp: string; buffers: ArrayBuffer[]; pieces: number[][] };
  parentPort!.on('message', (message: Message) => {
    try {
      const views = message.pieces.map(
        ([b, offset, length]) => new Uint8Array(message.buffers[b], offset, length),
      );
      writeFile(message.path, message.tmp, views);
      parentPort!.postMessage({ id: message.id });
    } catch (error) {
      const { message: text, code } = error as NodeJS.ErrnoException;
      parentPort!.postMessage({ id: message.id, error: String(text ?? error), code });
    }
  });

  function openDirect(tmp: string): number | null {
    if (O_DIRECT === undefined) return null;
    try {
      return fs.openSync(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EINVAL') return null; // tmpfs and others refuse it
      throw error;
    }
  }

  function writeFile(path: string, tmp: string, views: Uint8Array[]): void {
    if (!writeThrough(tmp, views, true)) writeThrough(tmp, views, false);
    fs.renameSync(tmp, path);
  }

  /**
   * Writes and fsyncs the temporary file; false when O_DIRECT was asked for and the file system
   * refused it, at open or (some accept the flag, then refuse the transfer) at the first write.
   */
  function writeThrough(tmp: string, views: Uint8Array[], direct: boolean): boolean {
    const fd = direct ? openDirect(tmp) : fs.openSync(tmp, 'w', 0o644);
    if (fd === null) return false;
    try {
      if (direct) writeStaged(fd, views);
      else for (const view of views) writeAll(fd, view, 0, view.byteLength, null);
      fs.fsyncSync(fd);
    } catch (error) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      if (direct && (error as NodeJS.ErrnoException).code === 'EINVAL') return false;
      throw error;
    }
    fs.closeSync(fd);
    return true;
  }

  /** Copies the views through the aligned stage in whole blocks; the zero padding is cut off at the end. */
  function writeStaged(fd: number, views: Uint8Array[]): void {
    let filled = 0;
    let offset = 0;
    let total = 0;
    const flush = (length: number) => {
      writeAll(fd, stage, 0, length, offset);
      offset += length;
    };
    for (const view of views) {
      total += view.byteLength;
      for (let at = 0; at < view.byteLength; ) {
        const n = Math.min(STAGE - filled, view.byteLength - at);
        stage.set(view.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === STAGE) {
          flush(STAGE);
          filled = 0;
        }
      }
    }
    if (filled > 0) {
      const padded = Math.ceil(filled / BLOCK) * BLOCK;
      stage.fill(0, filled, padded);
      flush(padded);
    }
    fs.ftruncateSync(fd, total);
  }

  function writeAll(
    fd: number,
    bytes: Uint8Array,
    from: number,
    length: number,
    position: number | null,
  ): void {
    for (let done = 0; done < length; ) {
      done += fs.writeSync(fd, bytes, from + done, length - done, position === null ? null : position + done);
    }
  }
}
