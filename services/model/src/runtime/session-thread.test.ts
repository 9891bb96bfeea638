import { setTimeout as sleep } from 'node:timers/promises';
import { GraphBuilder } from '@loupe/common';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ThreadedSession } from './session-thread.js';

const N = 384;
const MATMULS = 24;

/** y = x·w·w·…·w (MATMULS times), [N, N]: ~2.7 GFLOP, long enough to see who waits for it. */
function chainGraph(): Uint8Array {
  const g = new GraphBuilder();
  let y = g.input('x', 'float32', [N, N]);
  const w = g.input('w', 'float32', [N, N]);
  for (let i = 0; i < MATMULS; i++) y = g.op('MatMul', [y, w]);
  g.op('Identity', [y], {}, 'y');
  g.output('y', 'float32', [N, N]);
  return g.encode({ graphName: 'chain', opset: 20 });
}

/** y = a + b over [2, 3]. */
function addGraph(): Uint8Array {
  const g = new GraphBuilder();
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [2, 3]);
  g.op('Add', [a, b], {}, 'y');
  g.output('y', 'float32', [2, 3]);
  return g.encode({ graphName: 'add', opset: 20 });
}

const options: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, logSeverityLevel: 3 };

function chainFeeds(): Record<string, ort.Tensor> {
  // w = ones/N keeps every value bounded: each product is x's row means, broadcast
  const x = Float32Array.from({ length: N * N }, (_, i) => ((i * 7919) % 1000) / 1000);
  const w = new Float32Array(N * N).fill(1 / N);
  return { x: new ort.Tensor('float32', x, [N, N]), w: new ort.Tensor('float32', w, [N, N]) };
}

/** Which settles first: the run, or a 20 ms timer started beside it (a blocked event loop cannot fire it). */
async function firstOf(run: Promise<unknown>): Promise<'run' | 'timer'> {
  return Promise.race([run.then(() => 'run' as const), sleep(20).then(() => 'timer' as const)]);
}

describe('ThreadedSession', () => {
  let chain: ThreadedSession;
  let direct: ort.InferenceSession;

  beforeAll(async () => {
    chain = await ThreadedSession.open(chainGraph(), options);
    direct = await ort.InferenceSession.create(chainGraph(), options);
  });
  afterAll(async () => {
    await chain.release();
    await direct.release();
  });

  it('gives the same outputs as a session on this thread', async () => {
    const [threaded, reference] = [await chain.run(chainFeeds()), await direct.run(chainFeeds())];
    expect(chain.inputNames).toEqual(direct.inputNames);
    expect(chain.outputNames).toEqual(direct.outputNames);
    expect(threaded.y.dims).toEqual([N, N]);
    // same kernels, same thread count: bit-identical
    expect(threaded.y.data).toEqual(reference.y.data);
  });

  it('keeps the event loop turning while a run is in progress', async () => {
    // the control: in process, the run holds the loop until it is done
    expect(await firstOf(direct.run(chainFeeds()))).toBe('run');
    // on the thread, the loop goes round and round while the run works (a race against a timer would
    // depend on how fast this machine does the run; counting turns does not)
    let turns = 0;
    let settled = false;
    const turn = () => {
      if (settled) return;
      turns++;
      setImmediate(turn);
    };
    const run = chain.run(chainFeeds()).finally(() => {
      settled = true;
    });
    setImmediate(turn);
    await run;
    expect(turns).toBeGreaterThan(10);
  });

  it('rejects an aborted run at once, and the session keeps serving', async () => {
    const controller = new AbortController();
    const running = chain.run(chainFeeds(), undefined, { signal: controller.signal });
    const queued = chain.run(chainFeeds(), undefined, { signal: controller.signal });
    await sleep(5);
    const reason = new Error('caller went away');
    controller.abort(reason);
    await expect(running).rejects.toBe(reason);
    await expect(queued).rejects.toBe(reason);
    const after = await chain.run(chainFeeds());
    expect(after.y.data).toEqual((await direct.run(chainFeeds())).y.data);
  });

  it('surfaces ONNX Runtime errors with their own message', async () => {
    const bad = { x: new ort.Tensor('float32', new Float32Array(6), [2, 3]), w: chainFeeds().w };
    const expected = await direct.run(bad).then(
      () => null,
      (error: Error) => error.message,
    );
    expect(expected).toBeTruthy();
    await expect(chain.run(bad)).rejects.toThrow(expected!);
    expect((await chain.run(chainFeeds())).y.dims).toEqual([N, N]);
  });

  it('rejects a graph that does not load with the loader error', async () => {
    const garbage = Uint8Array.of(1, 2, 3, 4);
    const expected = await ort.InferenceSession.create(garbage).then(
      () => null,
      (error: Error) => error.message,
    );
    await expect(ThreadedSession.open(garbage, options)).rejects.toThrow(expected!);
  });
});

describe('ThreadedSession feeds', () => {
  let add: ThreadedSession;
  beforeAll(async () => {
    add = await ThreadedSession.open(addGraph(), options);
  });
  afterAll(() => add.release());

  it('copies feeds unless handed over, and copies only a view of a larger buffer', async () => {
    const a = Float32Array.of(1, 2, 3, 4, 5, 6);
    const shard = Float32Array.from({ length: 12 }, (_, i) => 10 * i);
    const b = shard.subarray(6, 12); // 60 … 110
    const feeds = { a: new ort.Tensor('float32', a, [2, 3]), b: new ort.Tensor('float32', b, [2, 3]) };
    const copied = await add.run(feeds);
    expect(Array.from(copied.y.data as Float32Array)).toEqual([61, 72, 83, 94, 105, 116]);
    expect(a.length).toBe(6);
    const handed = await add.run(feeds, undefined, { transfer: true });
    expect(Array.from(handed.y.data as Float32Array)).toEqual([61, 72, 83, 94, 105, 116]);
    expect(a.buffer.byteLength).toBe(0); // owned its whole buffer: handed over
    expect(shard[11]).toBe(110); // a view: copied, the shard untouched
  });

  it('hands lent feeds back into the feeds record, after a run and after a failed one', async () => {
    const a = Float32Array.of(1, 2, 3, 4, 5, 6);
    const feeds: Record<string, ort.Tensor> = {
      a: new ort.Tensor('float32', a, [2, 3]),
      b: new ort.Tensor('float32', new Float32Array(6).fill(1), [2, 3]),
    };
    const out = await add.run(feeds, undefined, { lend: ['a'] });
    expect(Array.from(out.y.data as Float32Array)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(a.buffer.byteLength).toBe(0); // handed over, not copied
    expect(Array.from(feeds.a.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(feeds.a.dims).toEqual([2, 3]);

    const wrong: Record<string, ort.Tensor> = {
      ...feeds,
      b: new ort.Tensor('float32', new Float32Array(4), [2, 2]),
    };
    await expect(add.run(wrong, undefined, { lend: ['a'] })).rejects.toThrow();
    expect(Array.from(wrong.a.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('rejects runs after release', async () => {
    const session = await ThreadedSession.open(addGraph(), options);
    await session.release();
    const feeds = { a: new ort.Tensor('float32', new Float32Array(6), [2, 3]) };
    await expect(session.run({ ...feeds, b: feeds.a })).rejects.toThrow('released');
  });
});
