import type { GraphBuilder } from '@loupe/common';

/**
 * out[i] = Σ_p updates[p] over every p with indices[p] = i: an [m, d] matrix from [P, d] rows, many of
 * which share an index (a latent picked by many vectors), summed in an order fixed by the data alone, so
 * the result is bit-identical at any thread count, and in parallel.
 *
 * Why not one scatter: ONNX Runtime's CPU ScatterND splits its updates across threads, so rows sharing
 * an index are summed in schedule order (a training run was not reproducible at 2 threads); its
 * ScatterElements adds in index order but on one thread, with an int64 index per element, and at
 * TopK's B·k·d = 100M elements that one thread cost most of a training step.
 *
 * How: the rows are sorted by index (a stable sort, TopK on the index), so equal indices are adjacent;
 * then each level cuts the sorted rows into chunks of CHUNK rows and sums each index's rows within a
 * chunk with one batched MatMul by a 0/1 "same index, first occurrence" mask (the sums stay in their
 * sorted order), keeping one row per index per chunk. Chunks alternate between aligned and shifted by
 * half a chunk, so rows split by one level's chunk boundary meet in the next. After LEVELS levels an
 * index with c rows has at most about c / CHUNK^LEVELS + 1 left; the few remaining duplicates go
 * through ScatterElements, now over roughly m rows instead of P.
 */
const CHUNK = 32;
const LEVELS = 3;

export function sumRowsByIndex(
  g: GraphBuilder,
  shape: { m: number; d: number },
  indices: string,
  updates: string,
): string {
  const { m, d } = shape;
  const flat = g.op('Reshape', [indices, g.constInt64([-1], [1], 'rs_flat')]);
  // float32 holds every index below 2^24 exactly; TopK orders equal keys by position (ONNX spec)
  const count = g.op('Shape', [flat]);
  const [, order] = g.opMulti('TopK', [g.op('Cast', [flat], { to: 1 }), count], 2, {
    axis: 0,
    largest: 0,
    sorted: 1,
  });
  let rows = g.op('Gather', [updates, order], { axis: 0 });
  let keys = g.op('Gather', [flat, order], { axis: 0 });
  for (let level = 0; level < LEVELS; level++) {
    ({ rows, keys } = chunkLevel(g, { m, d }, rows, keys, level % 2 === 0 ? 0 : CHUNK / 2));
  }
  const zeros = g.op('ConstantOfShape', [g.constInt64([m, d], [2], 'rs_m_by_d')]);
  const scatterIndices = g.op('Expand', [
    g.op('Unsqueeze', [keys, g.constInt64([1], [1], 'rs_axis1')]),
    g.op('Shape', [rows]),
  ]);
  return g.op('ScatterElements', [zeros, scatterIndices, rows], { axis: 0, reduction: 'add' });
}

/**
 * One level: sorted rows and their keys in, fewer sorted rows out (one per key per chunk). `offset`
 * padding rows at the front shift the chunk boundaries; padding rows carry the key m and are dropped.
 */
function chunkLevel(
  g: GraphBuilder,
  shape: { m: number; d: number },
  rows: string,
  keys: string,
  offset: number,
): { rows: string; keys: string } {
  const { m, d } = shape;
  const chunk = g.constInt64([CHUNK], [1], 'rs_chunk');
  const count = g.op('Shape', [keys]);
  // pad at the back to a whole number of chunks: (CHUNK − (offset + count) mod CHUNK) mod CHUNK
  const back = g.op('Mod', [
    g.op('Sub', [
      chunk,
      g.op('Mod', [g.op('Add', [count, g.constInt64([offset], [1], 'rs_offset')]), chunk]),
    ]),
    chunk,
  ]);
  const front = g.constInt64([offset], [1], 'rs_front');
  const zero = g.constInt64([0], [1], 'rs_zero');
  const paddedRows = g.op('Pad', [rows, g.op('Concat', [front, zero, back, zero], { axis: 0 })]);
  const paddedKeys = g.op('Pad', [
    keys,
    g.op('Concat', [front, back], { axis: 0 }),
    g.constInt64([m], [], 'rs_pad_key'),
  ]);
  const blocks = g.op('Reshape', [paddedRows, g.constInt64([-1, CHUNK, d], [3], 'rs_blocks')]);
  const blockKeys = g.op('Reshape', [paddedKeys, g.constInt64([-1, CHUNK], [2], 'rs_block_keys')]);
  // a row heads its key's run when the row before it in the chunk has another key
  const before = g.op('Pad', [
    g.op('Slice', [
      blockKeys,
      g.constInt64([0], [1], 'rs_start'),
      g.constInt64([CHUNK - 1], [1], 'rs_end'),
      g.constInt64([1], [1], 'rs_axis'),
    ]),
    g.constInt64([0, 1, 0, 0], [4], 'rs_shift'),
    g.constInt64([-1], [], 'rs_none'),
  ]);
  const head = g.op('Not', [g.op('Equal', [blockKeys, before])]);
  const same = g.op('Equal', [
    g.op('Unsqueeze', [blockKeys, g.constInt64([2], [1], 'rs_axis2')]),
    g.op('Unsqueeze', [blockKeys, g.constInt64([1], [1], 'rs_axis1b')]),
  ]);
  const mask = g.op(
    'Cast',
    [g.op('And', [same, g.op('Unsqueeze', [head, g.constInt64([2], [1], 'rs_axis2b')])])],
    {
      to: 1,
    },
  );
  const sums = g.op('Reshape', [g.op('MatMul', [mask, blocks]), g.constInt64([-1, d], [2], 'rs_rows')]);
  const flatKeys = g.op('Reshape', [blockKeys, g.constInt64([-1], [1], 'rs_flat_keys')]);
  const keep = g.op('And', [
    g.op('Reshape', [head, g.constInt64([-1], [1], 'rs_flat_head')]),
    g.op('Less', [flatKeys, g.constInt64([m], [], 'rs_m')]),
  ]);
  return {
    rows: g.op('Compress', [sums, keep], { axis: 0 }),
    keys: g.op('Compress', [flatKeys, keep], { axis: 0 }),
  };
}
