import { GraphBuilder, UserInputError } from '@loupe/common';
import ort from 'onnxruntime-node';
import type { ModelManifest } from '../graph/manifest.js';
import { readUnembedding, readWeight } from '../graph/unembedding.js';
import { addLogitTokens } from './logit-tokens.js';
import { type OpenedSession, openSession, type SessionSettings } from './sessions.js';

/**
 * What an MLP neuron's weights say without any data. Neuron n of layer L writes row n of
 * h.L.mlp.c_proj.weight ([d_mlp, d_model], Conv1D: y = x·W) into the residual stream per unit of
 * activation: its output direction.
 *
 * - Logit tokens are OpenAI's weight-based output tokens (automated-interpretability README, "Definition
 *   of connection weights"): c_proj.w[n, :] · diag(ln_f.g) · wte[t, :]. The final LayerNorm's gain is
 *   folded in; its centring, its normalisation and its bias are not (they depend on the input).
 * - Input tokens are OpenAI's weight-based input tokens: wte[t, :] · diag(h.L.ln_2.g) · c_fc.w[:, n].
 * - Connections are OpenAI's neuron-neuron weights: for (l1, n1) before (l2, n2),
 *   c_proj(l1).w[n1, :] · diag(h.l2.ln_2.g) · c_fc(l2).w[:, n2]; a neuron's upstream neurons are the
 *   earlier ones with the largest and smallest weights into it, its downstream ones the later ones it
 *   writes into most and least.
 * - Nearest neurons are by cosine of the raw output directions, in the same layer and in every layer.
 *
 * One ONNX graph holds every layer's directions and the unembedding as initializers, so a question is one
 * session run: two Gemms and four TopKs, never a loop over neurons in JavaScript. Open it once per model
 * and keep it (it holds nLayer · d_mlp · d_model + vocab · d_model floats, about 270 MB for GPT-2 small).
 */
export interface NeuronNeighbour {
  layer: number;
  neuron: number;
  cosine: number;
}

export interface NeuronConnection {
  layer: number;
  neuron: number;
  weight: number;
}

export interface NeuronWeightsAnswer {
  /** output tokens */
  positive: { id: number; value: number }[];
  negative: { id: number; value: number }[];
  inputPositive: { id: number; value: number }[];
  inputNegative: { id: number; value: number }[];
  nearestInLayer: NeuronNeighbour[];
  nearestInModel: NeuronNeighbour[];
  /** earlier neurons by weight into this one, largest first / smallest first (none in layer 0) */
  upstream: { positive: NeuronConnection[]; negative: NeuronConnection[] };
  /** later neurons by this one's weight into them (none in the last layer) */
  downstream: { positive: NeuronConnection[]; negative: NeuronConnection[] };
}

/** Logit tokens per side. */
export const NEURON_LOGIT_TOKENS = 10;
/** Smallest norm a direction is divided by: an all-zero direction gets cosine 0 with everything. */
const NORM_FLOOR = 1e-12;

/**
 * inputs: neuron (int64 [1], layer · d_mlp + n), layer (int64 [1]), k (int64 [1], neighbours + 1 for
 * the neuron itself), connections (int64 [1]); outputs: output and input logit tokens
 * (addLogitTokens, the input ones prefixed input_), layer_/model_ cosines and neuron ids, and
 * up_/down_ positive/negative connection weights and neuron ids.
 */
function buildGraph(
  directions: Float32Array,
  inputDirections: Float32Array,
  lnGain: Float32Array,
  unembedding: Awaited<ReturnType<typeof readUnembedding>>,
  dims: { nLayer: number; dMlp: number; dModel: number },
): Uint8Array {
  const { nLayer, dMlp, dModel: d } = dims;
  const n = nLayer * dMlp;
  const g = new GraphBuilder();
  const neuron = g.input('neuron', 'int64', [1]);
  const layer = g.input('layer', 'int64', [1]);
  const k = g.input('k', 'int64', [1]);
  const connections = g.input('connections', 'int64', [1]);
  const W_out = g.inlineWeight('W_out', [n, d], directions); // every layer's c_proj rows, [n, d]
  // every layer's c_fc columns as rows, each times its layer's ln_2 gain, [n, d]
  const W_in = g.inlineWeight('W_in', [n, d], inputDirections);
  const gain = g.inlineWeight('ln_f_g', [d], lnGain);
  const row = g.op('Gather', [W_out, neuron], { axis: 0 }); // [1, d]
  addLogitTokens(g, g.op('Mul', [row, gain]), unembedding, { constant: NEURON_LOGIT_TOKENS });
  const inputRow = g.op('Gather', [W_in, neuron], { axis: 0 }); // [1, d]
  addLogitTokens(g, inputRow, unembedding, { constant: NEURON_LOGIT_TOKENS }, 'input_');

  // connections: into this neuron from every earlier one, out of it into every later one; neurons of
  // the wrong side (same layer included) are pushed to ∓∞ so TopK never picks them
  const layerOf = g.constInt64(
    Array.from({ length: n }, (_, i) => Math.floor(i / dMlp)),
    [1, n],
    'layer_of',
  );
  const sides = {
    up: { weights: g.op('Gemm', [inputRow, W_out], { transB: 1 }), valid: g.op('Less', [layerOf, layer]) },
    down: { weights: g.op('Gemm', [row, W_in], { transB: 1 }), valid: g.op('Greater', [layerOf, layer]) },
  };
  const far = { positive: Number.NEGATIVE_INFINITY, negative: Number.POSITIVE_INFINITY };
  for (const [scope, { weights, valid }] of Object.entries(sides)) {
    for (const [side, fill] of Object.entries(far)) {
      const masked = g.op('Where', [valid, weights, g.constFloat([fill], [1], `${side}_fill`)]);
      const [values, ids] = [`${scope}_${side}_weights`, `${scope}_${side}_ids`];
      g.opNamed('TopK', [masked, connections], [values, ids], {
        axis: 1,
        largest: side === 'positive' ? 1 : 0,
        sorted: 1,
      });
      g.output(values, 'float32', [1, 'connections']);
      g.output(ids, 'int64', [1, 'connections']);
    }
  }

  // unit directions: W_out / max(‖row‖, floor), [n, d] (constant-folded when the session opens)
  const norms = g.op('ReduceL2', [W_out, g.constInt64([1], [1], 'axes')], { keepdims: 1 }); // [n, 1]
  const unit = g.op('Div', [W_out, g.op('Max', [norms, g.constFloat([NORM_FLOOR], [1], 'floor')])]);
  const query = g.op('Gather', [unit, neuron], { axis: 0 }); // [1, d]
  const cosines = g.op('Gemm', [query, unit], { transB: 1 }); // [1, n]
  g.opNamed('TopK', [cosines, k], ['model_cosines', 'model_ids'], { axis: 1, largest: 1, sorted: 1 });
  const byLayer = g.op('Reshape', [cosines, g.constInt64([nLayer, dMlp], [2], 'layers')]); // [nLayer, dMlp]
  const inLayer = g.op('Gather', [byLayer, layer], { axis: 0 }); // [1, dMlp]
  g.opNamed('TopK', [inLayer, k], ['layer_cosines', 'layer_ids'], { axis: 1, largest: 1, sorted: 1 });
  for (const scope of ['model', 'layer']) {
    g.output(`${scope}_cosines`, 'float32', [1, 'k']);
    g.output(`${scope}_ids`, 'int64', [1, 'k']);
  }
  return g.encode({ graphName: 'neuron_weights', opset: 20 });
}

export class NeuronWeights {
  private constructor(
    private readonly opened: OpenedSession,
    readonly dims: { nLayer: number; dMlp: number; dModel: number },
  ) {}

  /** Reads every layer's c_proj, ln_f's gain and the unembedding of a converted model folder. */
  static async open(
    modelDir: string,
    manifest: ModelManifest,
    settings: SessionSettings,
  ): Promise<NeuronWeights> {
    const { nLayer, dMlp, dModel } = manifest.dims;
    const directions = new Float32Array(nLayer * dMlp * dModel);
    for (let layer = 0; layer < nLayer; layer++)
      directions.set(
        await readWeight(modelDir, `h.${layer}.mlp.c_proj.weight`, [dMlp, dModel]),
        layer * dMlp * dModel,
      );
    const inputDirections = new Float32Array(nLayer * dMlp * dModel);
    for (let layer = 0; layer < nLayer; layer++) {
      const cFc = await readWeight(modelDir, `h.${layer}.mlp.c_fc.weight`, [dModel, dMlp]);
      const ln2 = await readWeight(modelDir, `h.${layer}.ln_2.weight`, [dModel]);
      const rows = inputDirections.subarray(layer * dMlp * dModel, (layer + 1) * dMlp * dModel);
      for (let i = 0; i < dModel; i++) {
        for (let j = 0; j < dMlp; j++) rows[j * dModel + i] = cFc[i * dMlp + j] * ln2[i];
      }
    }
    const lnGain = await readWeight(modelDir, 'ln_f.weight', [dModel]);
    const unembedding = await readUnembedding(modelDir);
    const dims = { nLayer, dMlp, dModel };
    const opened = await openSession(
      buildGraph(directions, inputDirections, lnGain, unembedding, dims),
      settings,
    );
    return new NeuronWeights(opened, dims);
  }

  /**
   * The neuron's output and input tokens, its k nearest other neurons in its layer and in the model,
   * and its k strongest upstream and downstream connections each way.
   */
  async of(layer: number, neuron: number, k: number): Promise<NeuronWeightsAnswer> {
    const { nLayer, dMlp } = this.dims;
    if (!Number.isInteger(layer) || layer < 0 || layer >= nLayer)
      throw new UserInputError(`layer ${layer} does not exist: the model has layers 0-${nLayer - 1}`);
    if (!Number.isInteger(neuron) || neuron < 0 || neuron >= dMlp)
      throw new UserInputError(`neuron ${neuron} does not exist: layers have neurons 0-${dMlp - 1}`);
    if (!Number.isInteger(k) || k < 1 || k > dMlp - 1)
      throw new UserInputError(`k must be 1-${dMlp - 1} (the other neurons of a layer), got ${k}`);
    const int64 = (v: number) => new ort.Tensor('int64', BigInt64Array.from([BigInt(v)]), [1]);
    const self = layer * dMlp + neuron;
    const r = await this.opened.session.run({
      neuron: int64(self),
      layer: int64(layer),
      k: int64(k + 1),
      connections: int64(Math.min(k, nLayer * dMlp)),
    });
    const tokens = (side: string) => {
      const ids = r[`${side}_ids`].data as BigInt64Array;
      const values = r[`${side}_values`].data as Float32Array;
      return Array.from(values, (value, i) => ({ id: Number(ids[i]), value }));
    };
    // the k + 1 nearest hold the neuron itself (cosine 1) unless a duplicate direction ties it: drop
    // it where it is, else the last one
    const neighbours = (scope: string, offset: number): NeuronNeighbour[] => {
      const ids = Array.from(r[`${scope}_ids`].data as BigInt64Array, (id) => Number(id) + offset);
      const cosines = r[`${scope}_cosines`].data as Float32Array;
      const all = ids.map((flat, i) => ({
        flat,
        layer: Math.floor(flat / dMlp),
        neuron: flat % dMlp,
        cosine: cosines[i],
      }));
      const at = all.findIndex((x) => x.flat === self);
      all.splice(at >= 0 ? at : all.length - 1, 1);
      return all.map(({ layer, neuron, cosine }) => ({ layer, neuron, cosine }));
    };
    // ∓∞ marks a neuron of the wrong side: there are fewer than k earlier (or later) neurons
    const connected = (scope: string, side: string): NeuronConnection[] => {
      const ids = r[`${scope}_${side}_ids`].data as BigInt64Array;
      const weights = r[`${scope}_${side}_weights`].data as Float32Array;
      return Array.from(ids, (id, i) => ({
        layer: Math.floor(Number(id) / dMlp),
        neuron: Number(id) % dMlp,
        weight: weights[i],
      })).filter((c) => Number.isFinite(c.weight));
    };
    return {
      positive: tokens('positive'),
      negative: tokens('negative'),
      inputPositive: tokens('input_positive'),
      inputNegative: tokens('input_negative'),
      nearestInLayer: neighbours('layer', layer * dMlp),
      nearestInModel: neighbours('model', 0),
      upstream: { positive: connected('up', 'positive'), negative: connected('up', 'negative') },
      downstream: { positive: connected('down', 'positive'), negative: connected('down', 'negative') },
    };
  }

  async close(): Promise<void> {
    await this.opened.session.release();
  }
}
