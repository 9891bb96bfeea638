import type { GraphBuilder } from '@loupe/common';

/**
 * out[i] = Σ_p weights[p]·vectors[p / perVector] over every p with indices[p] = i: an [m, d] matrix from
 * P weighted rows (TopK's k picks per vector: the decoder gradient is Σ acts·dRecon, the encoder's
 * Σ dActs·x), many of which share an index (a latent picked by many vectors), summed in an order fixed
 * by the data alone, so the result is bit-identical at any thread count, and in parallel.
 *
 * Why not one scatter: ONNX Runtime's CPU ScatterND splits its updates across threads, so rows sharing
 * an index are summed in schedule order (a training run was not reproducible at 2 threads); its
 * ScatterElements adds in index order but on one thread, with an int64 index per element, and at
 * TopK's B·k·d = 100M elements that one thread cost most of a training step.
 *
 * How: the picks are sorted by index (TopK on the index, which orders ties by position), so equal
 * indices are adjacent; their vectors are gathered in that order. Each level then cuts the sorted rows
 * into chunks of CHUNK rows and sums each index's rows within a chunk with one batched MatMul by a
 * "same index, first occurrence" mask (carrying the weights at the first level), keeping one row per
 * index per chunk, still sorted. The second level's chunks are shifted by half a chunk, so most rows a
 * chunk boundary split meet there. Rows whose index is then unique are written with ScatterND (no
 * index twice, so its threads never meet); the few left sharing an index are added by ScatterElements.
 */
const CHUNK = 32;
const LEVELS = 2;

export interface WeightedRows {
  /** [P] or [P, 1] int64: the output row of each pick */
  indices: string;
  /** [P] float: each pick's weight */
  weights: string;
  /** [B, d]: pick p's vector is row p / perVector */
  vectors: string;
  /** int64 [1]: picks per vector (k) */
  perVector: string;
  /** a static P is a multiple of CHUNK (k = 32): the picks need no padding to whole chunks */
  wholeChunks?: boolean;
  /**
   * [P] or [B, k] bool: the picks that can add something (e.g. ReLU's padding picks, weight 0, are
   * left out before sorting: at an L0 well under k_cap most picks are padding)
   */
  keep?: string;
}

export function sumRowsByIndex(g: GraphBuilder, shape: { m: number; d: number }, rows: WeightedRows): string {
  const { m, d } = shape;
  if (m >= 2 ** 24) throw new Error(`row sums sort indices as float32, exact below 2^24; got ${m} rows`);
  const flatten = (name: string) => g.op('Reshape', [name, g.constInt64([-1], [1], 'rs_flat')]);
  let flat = flatten(rows.indices);
  let weights = flatten(rows.weights);
  // each pick's position in the [B, k] picks, whose quotient by k is its vector
  let positions: string | undefined;
  if (rows.keep) {
    const keep = flatten(rows.keep);
    const count = g.op('Squeeze', [g.op('Shape', [flat])]);
    const all = g.op('Range', [
      g.constInt64([0], [], 'rs_range_start'),
      count,
      g.constInt64([1], [], 'rs_range_step'),
    ]);
    positions = g.op('Compress', [all, keep], { axis: 0 });
    flat = g.op('Compress', [flat, keep], { axis: 0 });
    weights = g.op('Compress', [weights, keep], { axis: 0 });
  }
  // float32 holds every index below 2^24 exactly
  const [, order] = g.opMulti('TopK', [g.op('Cast', [flat], { to: 1 }), g.op('Shape', [flat])], 2, {
    axis: 0,
    largest: 0,
    sorted: 1,
  });
  let sortedPositions = positions ? g.op('Gather', [positions, order], { axis: 0 }) : order;
  let keys = g.op('Gather', [flat, order], { axis: 0 });
  let sortedWeights = g.op('Gather', [weights, order], { axis: 0 });
  if (!rows.wholeChunks || rows.keep) {
    // the first level's padding goes on the picks, before their vectors are gathered, so the gathered
    // [P, d] rows come out whole chunks and are never copied to pad them
    const back = paddingToChunks(g, g.op('Shape', [keys]), 0);
    const pads = g.op('Concat', [g.constInt64([0], [1], 'rs_no_front'), back], { axis: 0 });
    keys = g.op('Pad', [keys, pads, g.constInt64([m], [], 'rs_pad_key0')]);
    sortedWeights = g.op('Pad', [sortedWeights, pads]);
    sortedPositions = g.op('Pad', [sortedPositions, pads]);
  }
  let level: Level = {
    rows: g.op('Gather', [rows.vectors, g.op('Div', [sortedPositions, rows.perVector])], { axis: 0 }),
    keys,
    weights: sortedWeights,
  };
  for (let i = 0; i < LEVELS; i++) {
    level = chunkLevel(g, { m, d }, level, i % 2 === 0 ? 0 : CHUNK / 2, i === 0);
  }
  return writeRows(g, { m, d }, level.rows, level.keys);
}

interface Level {
  rows: string;
  keys: string;
  /** per-row weights, folded into the first level's MatMul */
  weights?: string;
}

/** Sorted rows with (nearly) unique keys into [m, d]: ScatterND for unique keys, ScatterElements for the rest. */
function writeRows(g: GraphBuilder, shape: { m: number; d: number }, rows: string, keys: string): string {
  const { m, d } = shape;
  const none = g.constInt64([-1], [], 'rs_no_key');
  const one = g.constInt64([1], [1], 'rs_one');
  const zero = g.constInt64([0], [1], 'rs_zero_w');
  const count = g.op('Shape', [keys]);
  // the keys before and after each row (-1 past the ends)
  const previous = g.op('Pad', [
    g.op('Slice', [keys, zero, g.op('Sub', [count, one])]),
    g.constInt64([1, 0], [2], 'rs_prev'),
    none,
  ]);
  const next = g.op('Pad', [g.op('Slice', [keys, one, count]), g.constInt64([0, 1], [2], 'rs_next'), none]);
  const shared = g.op('Or', [g.op('Equal', [keys, previous]), g.op('Equal', [keys, next])]);
  const unique = g.op('Not', [shared]);
  const zeros = g.op('ConstantOfShape', [g.constInt64([m, d], [2], 'rs_m_by_d')]);
  const axis1 = g.constInt64([1], [1], 'rs_axis1');
  const written = g.op('ScatterND', [
    zeros,
    g.op('Unsqueeze', [g.op('Compress', [keys, unique], { axis: 0 }), axis1]),
    g.op('Compress', [rows, unique], { axis: 0 }),
  ]);
  const sharedRows = g.op('Compress', [rows, shared], { axis: 0 });
  const sharedKeys = g.op('Unsqueeze', [g.op('Compress', [keys, shared], { axis: 0 }), axis1]);
  return g.op(
    'ScatterElements',
    [written, g.op('Expand', [sharedKeys, g.op('Shape', [sharedRows])]), sharedRows],
    { axis: 0, reduction: 'add' },
  );
}

/** int64 [1]: rows to add at the back so that offset + count + them is a whole number of chunks. */
function paddingToChunks(g: GraphBuilder, count: string, offset: number): string {
  const chunk = g.constInt64([CHUNK], [1], 'rs_chunk');
  const filled = g.op('Mod', [g.op('Add', [count, g.constInt64([offset], [1], 'rs_offset')]), chunk]);
  return g.op('Mod', [g.op('Sub', [chunk, filled]), chunk]);
}

/**
 * One level: sorted rows and their keys in, fewer sorted rows out (one per key per chunk). `offset`
 * padding rows at the front shift the chunk boundaries; padding rows carry the key m and are dropped.
 */
function chunkLevel(
  g: GraphBuilder,
  shape: { m: number; d: number },
  input: Level,
  offset: number,
  wholeChunks: boolean,
): Level {
  const { m, d } = shape;
  let { rows, keys, weights } = input;
  if (!wholeChunks) {
    const back = paddingToChunks(g, g.op('Shape', [keys]), offset);
    const front = g.constInt64([offset], [1], 'rs_front');
    const zero = g.constInt64([0], [1], 'rs_zero');
    const pads1d = g.op('Concat', [front, back], { axis: 0 });
    rows = g.op('Pad', [rows, g.op('Concat', [front, zero, back, zero], { axis: 0 })]);
    keys = g.op('Pad', [keys, pads1d, g.constInt64([m], [], 'rs_pad_key')]);
    if (weights) weights = g.op('Pad', [weights, pads1d]);
  }
  const blocks = g.op('Reshape', [rows, g.constInt64([-1, CHUNK, d], [3], 'rs_blocks')]);
  const blockKeys = g.op('Reshape', [keys, g.constInt64([-1, CHUNK], [2], 'rs_block_keys')]);
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
  let mask = g.op(
    'Cast',
    [g.op('And', [same, g.op('Unsqueeze', [head, g.constInt64([2], [1], 'rs_axis2b')])])],
    {
      to: 1,
    },
  );
  if (weights) {
    // mask[c, i, j] · weight of row j: the MatMul sums each run's weighted rows
    const blockWeights = g.op('Reshape', [weights, g.constInt64([-1, 1, CHUNK], [3], 'rs_block_weights')]);
    mask = g.op('Mul', [mask, blockWeights]);
  }
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
