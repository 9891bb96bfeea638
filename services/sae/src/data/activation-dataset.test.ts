import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { float32ToFloat16, writeSafetensors } from '@loupe/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActivationDataset, type DatasetSettings } from './activation-dataset.js';
import { openActivationSource } from './activation-source.js';
import { estimateActivationScale } from './normalisation.js';

// Every vector says where it came from: [shard, row within shard, a unique id, 1].
const WIDTH = 4;
const SHARDS = 6;
const ROWS_PER_SHARD = 100;
const HOOK = 'blocks.0.hook_resid_post';

function shardVectors(shard: number, rows = ROWS_PER_SHARD): Float32Array {
  const out = new Float32Array(rows * WIDTH);
  for (let r = 0; r < rows; r++) out.set([shard, r, shard * 1000 + r, 1], r * WIDTH);
  return out;
}

function ids(data: Float32Array): number[] {
  const out: number[] = [];
  for (let i = 2; i < data.length; i += WIDTH) out.push(data[i]);
  return out;
}

let scratch: string;
let jobDir: string;

async function writeShard(dir: string, shard: number, data: Float32Array, hook = HOOK): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  const rows = data.length / WIDTH;
  await writeSafetensors(
    path.join(dir, `${String(shard).padStart(6, '0')}.safetensors`),
    [
      { name: 'activations', dtype: 'F32', shape: [rows, WIDTH], data },
      { name: 'token_ids', dtype: 'I32', shape: [rows], data: new Int32Array(rows) },
    ],
    { hook, model: 'tiny' },
  );
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-sae-data-'));
  jobDir = path.join(scratch, 'job');
  for (let s = 0; s < SHARDS; s++) await writeShard(path.join(jobDir, 'shards', HOOK), s, shardVectors(s));
});

afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

const settings = (over: Partial<DatasetSettings> = {}): DatasetSettings => ({
  batchSize: 32,
  shuffleCapacity: 150,
  seed: 7,
  heldOutFraction: 0,
  readChunkRows: 40,
  ...over,
});

async function collect(dataset: ActivationDataset, epoch = 0): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for await (const batch of dataset.epoch(epoch)) out.push(batch.data.slice());
  return out;
}

describe('activation source', () => {
  it('reads a capture job folder for its one hook, with hook and model from the shards', async () => {
    const source = await openActivationSource(jobDir);
    expect(source).toMatchObject({ width: WIDTH, rows: SHARDS * ROWS_PER_SHARD, hook: HOOK, model: 'tiny' });
    expect(source.segments.map((s) => path.basename(s.file))).toEqual(
      Array.from({ length: SHARDS }, (_, i) => `${String(i).padStart(6, '0')}.safetensors`),
    );
    // the hook's shard folder directly is the same source
    expect((await openActivationSource(path.join(jobDir, 'shards', HOOK))).rows).toBe(source.rows);
  });

  it('needs --hook when a job holds several hooks, and names them', async () => {
    const dir = path.join(scratch, 'two-hooks');
    await writeShard(path.join(dir, 'shards', 'a.hook'), 0, shardVectors(0), 'a.hook');
    await writeShard(path.join(dir, 'shards', 'b.hook'), 0, shardVectors(1, 10), 'b.hook');
    await expect(openActivationSource(dir)).rejects.toThrow(
      /several hooks \(a\.hook, b\.hook\); name one with --hook/,
    );
    expect((await openActivationSource(dir, { hook: 'b.hook' })).rows).toBe(10);
    await expect(openActivationSource(dir, { hook: 'c.hook' })).rejects.toThrow(/no shards for hook c\.hook/);
  });

  it('refuses shards of different widths', async () => {
    const dir = path.join(scratch, 'ragged');
    await writeShard(dir, 0, shardVectors(0));
    await writeSafetensors(path.join(dir, '000001.safetensors'), [
      { name: 'activations', dtype: 'F32', shape: [2, 3], data: new Float32Array(6) },
    ]);
    await expect(openActivationSource(dir)).rejects.toThrow(/is 3 wide but earlier shards are 4 wide/);
  });

  it('picks the only 2-D float tensor of a file, or the one named, with clear errors', async () => {
    const file = path.join(scratch, 'vectors.safetensors');
    await writeSafetensors(file, [
      { name: 'x', dtype: 'F32', shape: [3, WIDTH], data: shardVectors(9, 3) },
      { name: 'ids', dtype: 'I32', shape: [3, 2], data: new Int32Array(6) },
      { name: 'flat', dtype: 'F32', shape: [12], data: new Float32Array(12) },
    ]);
    expect((await openActivationSource(file)).segments[0].tensor).toBe('x');
    await expect(openActivationSource(file, { tensor: 'y' })).rejects.toThrow(
      /no tensor named "y" \(tensors: x F32\[3, 4\]/,
    );
    await expect(openActivationSource(file, { tensor: 'flat' })).rejects.toThrow(
      /shape \[12\]; vectors must be 2-D/,
    );
    await expect(openActivationSource(file, { tensor: 'ids' })).rejects.toThrow(
      /is I32; vectors must be F32/,
    );
    await expect(openActivationSource(file, { expectedWidth: 8 })).rejects.toThrow(
      /vectors are 4 wide, but 8 are needed/,
    );

    const two = path.join(scratch, 'two.safetensors');
    await writeSafetensors(two, [
      { name: 'a', dtype: 'F32', shape: [1, 2], data: new Float32Array(2) },
      { name: 'b', dtype: 'F32', shape: [1, 2], data: new Float32Array(2) },
    ]);
    await expect(openActivationSource(two)).rejects.toThrow(
      /several 2-D float tensors; name one with --tensor/,
    );
    await expect(openActivationSource(path.join(scratch, 'missing'))).rejects.toThrow(
      /no such file or folder/,
    );
  });

  it('reads F16 vectors as float32', async () => {
    const file = path.join(scratch, 'half.safetensors');
    const values = shardVectors(2, 5);
    await writeSafetensors(file, [
      { name: 'x', dtype: 'F16', shape: [5, WIDTH], data: float32ToFloat16(values) },
    ]);
    const dataset = new ActivationDataset(await openActivationSource(file), settings({ batchSize: 5 }));
    const [batch] = await collect(dataset);
    expect(ids(batch).sort((a, b) => a - b)).toEqual(ids(values));
  });
});

describe('shuffled batches', () => {
  it('yields every vector of the source exactly once per epoch', async () => {
    const dataset = new ActivationDataset(await openActivationSource(jobDir), settings());
    const batches = await collect(dataset);
    const all = batches.flatMap(ids).sort((a, b) => a - b);
    const expected = Array.from({ length: SHARDS }, (_, s) => ids(shardVectors(s))).flat();
    expect(all).toEqual(expected);
    // full batches, then one short one with the remainder
    expect(batches.slice(0, -1).every((b) => b.length === 32 * WIDTH)).toBe(true);
    expect(batches.at(-1)!.length).toBe(((SHARDS * ROWS_PER_SHARD) % 32) * WIDTH);
  });

  it('never holds more than the buffer capacity', async () => {
    const sizes: number[] = [];
    const dataset = new ActivationDataset(
      await openActivationSource(jobDir),
      settings({ shuffleCapacity: 50, observe: (b) => sizes.push(b.size) }),
    );
    await collect(dataset);
    expect(sizes.length).toBeGreaterThan(0);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(50);
  });

  it('gives the same batches for the same seed and different ones for another seed or epoch', async () => {
    const source = await openActivationSource(jobDir);
    const a = await collect(new ActivationDataset(source, settings()));
    const b = await collect(new ActivationDataset(source, settings()));
    const c = await collect(new ActivationDataset(source, settings({ seed: 8 })));
    const nextEpoch = await collect(new ActivationDataset(source, settings()), 1);
    expect(b).toEqual(a);
    expect(ids(c[0])).not.toEqual(ids(a[0]));
    expect(ids(nextEpoch[0])).not.toEqual(ids(a[0]));
  });

  it('mixes shards: the first batch draws from several of them', async () => {
    const dataset = new ActivationDataset(
      await openActivationSource(jobDir),
      settings({ shuffleCapacity: 300 }),
    );
    const [first] = await collect(dataset);
    const shards = new Set(ids(first).map((id) => Math.floor(id / 1000)));
    expect(shards.size).toBeGreaterThanOrEqual(3);
  });

  it('keeps the last vectors out of training and reads them back in order', async () => {
    const source = await openActivationSource(jobDir);
    const dataset = new ActivationDataset(source, settings({ heldOutFraction: 0.25 }));
    expect(dataset.heldOutRows).toBe(150);
    const train = (await collect(dataset)).flatMap(ids);
    const heldOut: number[] = [];
    for await (const batch of dataset.heldOut(64)) heldOut.push(...ids(batch.data));
    const all = Array.from({ length: SHARDS }, (_, s) => ids(shardVectors(s))).flat();
    expect(heldOut).toEqual(all.slice(450));
    expect(train.sort((a, b) => a - b)).toEqual(all.slice(0, 450));
  });

  it('normalises to unit mean squared norm with a recorded scale', async () => {
    const source = await openActivationSource(jobDir);
    const scale = await estimateActivationScale(new ActivationDataset(source, settings()), source.rows);
    const dataset = new ActivationDataset(source, settings({ scale }));
    let sum = 0;
    let rows = 0;
    for await (const batch of dataset.epoch(0)) {
      for (const v of batch.data) sum += v * v;
      rows += batch.rows;
    }
    expect(sum / rows).toBeCloseTo(1, 5);
  });
});
