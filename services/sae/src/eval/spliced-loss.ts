import { parseHook, UserInputError } from '@loupe/common';
import { type Gpt2Runner, logSoftmax } from '@loupe/model';
import { reconstruct } from '../format/sae-forward.js';
import type { Sae } from '../format/sae-model.js';

/**
 * How much of the model's next-token loss an SAE keeps when its reconstruction replaces the hook it
 * reads: CE recovered = (CE zero-ablated − CE spliced) / (CE zero-ablated − CE clean), and the KL
 * divergence of the spliced model from the clean one. The splice goes through the model's per-position
 * residual additions (reconstruction − original at blocks.L.hook_resid_pre), so only residual-stream
 * hooks can be spliced this way.
 *
 * Computed as SAELens's evals do by default (`exclude_special_tokens`): every window starts with the
 * model's BOS (`<|endoftext|>` for GPT-2, which TransformerLens prepends); positions holding a special
 * token keep their original activations (zero ablation still replaces every position) and are left out
 * of the means: CE over positions 0..n−2 whose input token is not special, KL over positions 0..n−1
 * (the last position predicts nothing to score but has a distribution to compare).
 */
export interface SplicedLoss {
  cleanCe: number;
  zeroAblatedCe: number;
  splicedCe: number;
  ceRecovered: number | null;
  /** mean over non-special positions of KL(clean ‖ spliced), nats */
  kl: number;
  /** positions the CE means are over */
  tokens: number;
}

/**
 * The forward passes a splice needs, wherever the model runs: in this process (`runnerSpliceModel`)
 * or behind the capture service (`captureSpliceModel`). The arithmetic stays in `splicedLossWith`.
 */
export interface SpliceModel {
  dims: { nLayer: number; dModel: number; vocabSize: number };
  /** the model's BOS / special token (GPT-2's `<|endoftext|>`), null when its vocabulary has none */
  endOfTextId: number | null;
  /** the unmodified model: activations [tokens, width] at `hook` and logits [tokens, vocab] */
  clean(ids: number[], hook: string): Promise<{ activations: Float32Array; logits: Float32Array }>;
  /** logits [tokens, vocab] of one run per addition ([tokens, d_model]) at blocks.{layer}.hook_resid_pre */
  withAdditions(ids: number[], layer: number, additions: Float32Array[]): Promise<Float32Array[]>;
}

export interface SpliceOptions {
  /** x̂ for [rows, d_in] inputs; default the plain-TypeScript reference (fine for a few texts) */
  reconstruct?: (x: Float32Array, rows: number) => Promise<Float32Array> | Float32Array;
}

/** The spliced loss with an in-process runner. */
export function splicedLoss(
  runner: Gpt2Runner,
  sae: Sae,
  windows: number[][],
  options: SpliceOptions = {},
): Promise<SplicedLoss> {
  return splicedLossWith(runnerSpliceModel(runner), sae, windows, options);
}

export function runnerSpliceModel(runner: Gpt2Runner): SpliceModel {
  return {
    dims: runner.manifest.dims,
    endOfTextId: runner.tokenizer.endOfTextId,
    async clean(ids, hook) {
      const [out] = await runner.forward([{ ids, hooks: [hook], logits: true }]);
      return { activations: out.hooks.get(hook)!, logits: out.logits! };
    },
    async withAdditions(ids, layer, additions) {
      const runs = await runner.forward(
        additions.map((vector) => ({
          ids,
          hooks: [],
          logits: true,
          steering: [{ layer, vector, strength: 1 }],
        })),
      );
      return runs.map((run) => run.logits!);
    },
  };
}

/** Checks that `sae` can be spliced into a model of these dimensions; returns the hook's layer. */
export function spliceLayer(sae: Sae, dims: SpliceModel['dims']): number {
  const hook = sae.config.hookName ?? '';
  const ref = parseHook(hook, dims.nLayer);
  if (ref.kind !== 'block' || ref.hook !== 'hook_resid_pre') {
    throw new UserInputError(
      `only blocks.{L}.hook_resid_pre SAEs can be spliced into the model, not "${hook}"`,
    );
  }
  if (sae.config.dIn !== dims.dModel)
    throw new UserInputError(`the SAE reads ${sae.config.dIn} values; ${hook} has ${dims.dModel}`);
  return ref.layer;
}

export async function splicedLossWith(
  model: SpliceModel,
  sae: Sae,
  windows: number[][],
  options: SpliceOptions = {},
): Promise<SplicedLoss> {
  const layer = spliceLayer(sae, model.dims);
  const hook = sae.config.hookName!;
  const { vocabSize } = model.dims;
  const recon = options.reconstruct ?? ((x: Float32Array, rows: number) => reconstruct(sae, x, rows));
  const totals = { clean: 0, zero: 0, spliced: 0, kl: 0, tokens: 0, klPositions: 0 };
  const bos = model.endOfTextId;
  for (const text of windows) {
    const ids = bos === null || text[0] === bos ? text : [bos, ...text];
    if (ids.length < 2) continue;
    const clean = await model.clean(ids, hook);
    const original = clean.activations;
    const d = original.length / ids.length;
    // only ordinary tokens are reconstructed (and counted in the reconstruction metrics)
    const kept = ids.flatMap((id, t) => (id === bos ? [] : [t]));
    const x = new Float32Array(kept.length * d);
    for (const [r, t] of kept.entries()) x.set(original.subarray(t * d, (t + 1) * d), r * d);
    const xHat = kept.length > 0 ? await recon(x, kept.length) : x;
    const delta = new Float32Array(original.length);
    for (const [r, t] of kept.entries()) {
      for (let j = 0; j < d; j++) delta[t * d + j] = xHat[r * d + j] - x[r * d + j];
    }
    const minus = Float32Array.from(original, (v) => -v);
    const [zero, spliced] = await model.withAdditions(ids, layer, [minus, delta]);
    for (let t = 0; t < ids.length; t++) {
      if (ids[t] === bos) continue;
      const at = (logits: Float32Array) => logits.subarray(t * vocabSize, (t + 1) * vocabSize);
      const p = logSoftmax(at(clean.logits));
      const q = logSoftmax(at(spliced));
      let kl = 0;
      for (let v = 0; v < vocabSize; v++) kl += Math.exp(p[v]) * (p[v] - q[v]);
      totals.kl += kl;
      totals.klPositions++;
      if (t + 1 === ids.length) continue;
      const next = ids[t + 1];
      totals.clean -= p[next];
      totals.spliced -= q[next];
      totals.zero -= logSoftmax(at(zero))[next];
      totals.tokens++;
    }
  }
  if (totals.tokens === 0) throw new UserInputError('no window has two or more tokens to predict from');
  const n = totals.tokens;
  const [cleanCe, zeroAblatedCe, splicedCe] = [totals.clean / n, totals.zero / n, totals.spliced / n];
  const gap = zeroAblatedCe - cleanCe;
  return {
    cleanCe,
    zeroAblatedCe,
    splicedCe,
    // zero ablation no worse than the clean model leaves nothing to recover
    ceRecovered: gap > 0 ? (zeroAblatedCe - splicedCe) / gap : null,
    kl: totals.kl / totals.klPositions,
    tokens: n,
  };
}
