import { type Gpt2Runner, logSoftmax } from '@loupe/capture';
import { parseHook, UserInputError } from '@loupe/common';
import { reconstruct } from '../format/sae-forward.js';
import type { Sae } from '../format/sae-model.js';

/**
 * How much of the model's next-token loss an SAE keeps when its reconstruction replaces the hook it
 * reads: CE recovered = (CE zero-ablated − CE spliced) / (CE zero-ablated − CE clean), and the KL
 * divergence of the spliced model from the clean one. The splice goes through the model's per-position
 * residual additions (reconstruction − original at blocks.L.hook_resid_pre), so only residual-stream
 * hooks can be spliced this way.
 */
export interface SplicedLoss {
  cleanCe: number;
  zeroAblatedCe: number;
  splicedCe: number;
  ceRecovered: number | null;
  /** mean over predicted positions of KL(clean ‖ spliced), nats */
  kl: number;
  tokens: number;
}

export async function splicedLoss(runner: Gpt2Runner, sae: Sae, windows: number[][]): Promise<SplicedLoss> {
  const hook = sae.config.hookName ?? '';
  const ref = parseHook(hook, runner.manifest.dims.nLayer);
  if (ref.kind !== 'block' || ref.hook !== 'hook_resid_pre') {
    throw new UserInputError(
      `only blocks.{L}.hook_resid_pre SAEs can be spliced into the model, not "${hook}"`,
    );
  }
  const { dModel, vocabSize } = runner.manifest.dims;
  if (sae.config.dIn !== dModel)
    throw new UserInputError(`the SAE reads ${sae.config.dIn} values; ${hook} has ${dModel}`);
  const totals = { clean: 0, zero: 0, spliced: 0, kl: 0, tokens: 0 };
  for (const ids of windows) {
    if (ids.length < 2) continue;
    const [clean] = await runner.forward([{ ids, hooks: [hook], logits: true }]);
    const original = clean.hooks.get(hook)!;
    const recon = reconstruct(sae, original, ids.length);
    const delta = Float32Array.from(recon, (v, i) => v - original[i]);
    const minus = Float32Array.from(original, (v) => -v);
    const [zero, spliced] = await runner.forward([
      { ids, hooks: [], logits: true, steering: [{ layer: ref.layer, vector: minus, strength: 1 }] },
      { ids, hooks: [], logits: true, steering: [{ layer: ref.layer, vector: delta, strength: 1 }] },
    ]);
    for (let t = 0; t + 1 < ids.length; t++) {
      const at = (logits: Float32Array) => logits.subarray(t * vocabSize, (t + 1) * vocabSize);
      const p = logSoftmax(at(clean.logits!));
      const q = logSoftmax(at(spliced.logits!));
      const next = ids[t + 1];
      totals.clean -= p[next];
      totals.spliced -= q[next];
      totals.zero -= logSoftmax(at(zero.logits!))[next];
      let kl = 0;
      for (let v = 0; v < vocabSize; v++) kl += Math.exp(p[v]) * (p[v] - q[v]);
      totals.kl += kl;
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
    kl: totals.kl / n,
    tokens: n,
  };
}
