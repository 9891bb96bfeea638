import { UserInputError } from '@loupe/common';
import ort from 'onnxruntime-node';
import type { Gpt2Config } from '../config/gpt2-config.js';
import { pastKeyInput, pastValueInput, presentKeyOutput, presentValueOutput } from '../graph/gpt2-graph.js';
import { clampFeeds, steeringFeeds } from './control-feeds.js';
import type { FeatureClamp, ForwardRequest, ForwardResult, ResidualAddition } from './gpt2-runner.js';

/** One sequence being generated: the edits every one of its forward passes carries. */
export interface DecodeRow {
  steering: ResidualAddition[];
  clamps: FeatureClamp[];
}

/**
 * Generation's forward passes. `step` feeds each row's new tokens (the prompt first, then one token at
 * a time; every row the same count) after everything fed before, and returns each row's logits at its
 * last new position.
 */
export interface Decoder {
  step(ids: number[][]): Promise<Float32Array[]>;
}

/**
 * A decoder over model.onnx's key/value cache (converter 1.2.0 on): each step runs only the new tokens,
 * reading earlier positions' keys and values from the last step's presents, as Hugging Face's
 * `use_cache` does. Exact: a position's keys and values depend only on the positions up to it, and
 * steering and clamps act on each position when it is new, as they would in a full recompute.
 */
export class CachedDecoder implements Decoder {
  private past: Record<string, ort.Tensor>;
  private fed = 0;
  private readonly controls: Record<string, ort.Tensor>;

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly dims: Gpt2Config,
    rows: DecodeRow[],
  ) {
    for (const row of rows)
      if (row.steering.some((a) => a.vector.length !== dims.dModel))
        throw new UserInputError('generation steers with one d_model vector per layer, not one per position');
    // steering [rows, 1, d] broadcasts over whichever positions a step feeds
    this.controls = {
      ...steeringFeeds(
        dims,
        rows.map((r) => ({ ids: [0], steering: r.steering })),
        1,
      ),
      ...clampFeeds(dims, rows),
    };
    const { nLayer, nHead, dModel } = dims;
    this.past = {};
    const empty = new ort.Tensor('float32', new Float32Array(0), [rows.length, nHead, 0, dModel / nHead]);
    for (let layer = 0; layer < nLayer; layer++) {
      this.past[pastKeyInput(layer)] = empty;
      this.past[pastValueInput(layer)] = empty;
    }
  }

  async step(ids: number[][]): Promise<Float32Array[]> {
    const batch = ids.length;
    const seq = ids[0].length;
    const total = this.fed + seq;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat(), BigInt), [batch, seq]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(batch * total).fill(1n), [batch, total]),
      ...this.controls,
      ...this.past,
    };
    const { nLayer, vocabSize } = this.dims;
    const presents = Array.from({ length: nLayer }, (_, l) => [
      presentKeyOutput(l),
      presentValueOutput(l),
    ]).flat();
    const out = await this.session.run(feeds, ['logits', ...presents]);
    for (let layer = 0; layer < nLayer; layer++) {
      this.past[pastKeyInput(layer)] = out[presentKeyOutput(layer)];
      this.past[pastValueInput(layer)] = out[presentValueOutput(layer)];
    }
    this.fed = total;
    const logits = out.logits.data as Float32Array; // [batch, seq, vocab]
    return ids.map((_, row) =>
      logits.slice((row * seq + seq - 1) * vocabSize, (row * seq + seq) * vocabSize),
    );
  }
}

/**
 * The decoder for graphs converted before the cache existed: every step runs each row's whole sequence
 * again through `forward`. Same tokens and log-probabilities, quadratic cost.
 */
export class RecomputingDecoder implements Decoder {
  private readonly sequences: number[][];

  constructor(
    private readonly forward: (requests: ForwardRequest[]) => Promise<ForwardResult[]>,
    private readonly rows: DecodeRow[],
    private readonly vocabSize: number,
  ) {
    this.sequences = rows.map(() => []);
  }

  async step(ids: number[][]): Promise<Float32Array[]> {
    for (const [row, add] of ids.entries()) this.sequences[row].push(...add);
    const results = await this.forward(
      this.rows.map((row, i) => ({ ids: this.sequences[i], hooks: [], logits: true, ...row })),
    );
    return results.map((result, i) => {
      const n = this.sequences[i].length;
      return result.logits!.slice((n - 1) * this.vocabSize, n * this.vocabSize);
    });
  }
}
