import type { ActivationSource } from '../data/activation-source.js';
import { piecesInRange, readPieces } from '../data/row-reader.js';
import { decode, inputScales } from '../format/sae-forward.js';
import { ReconstructionAccumulator, type ReconstructionMetrics } from '../format/sae-metrics.js';
import type { Sae } from '../format/sae-model.js';
import { DENSE_FIRING_FRACTION } from '../run/latent-activity.js';

export interface ReconstructionEval extends ReconstructionMetrics {
  l0: number;
  /** latents that never fired over the evaluated vectors */
  deadFraction: number;
  /** latents that fired on more than DENSE_FIRING_FRACTION of them */
  denseFraction: number;
  /** the window dead and dense are judged over: every evaluated vector */
  activityWindowTokens: number;
}

/** Latents [rows, d_sae] of inputs [rows, d_in]: the ONNX Runtime encoder in the service. */
export type EncodeRows = (x: Float32Array, rows: number) => Promise<Float32Array>;

/**
 * Reconstruction quality, L0 and dead / dense latents of an SAE over batches of raw activations.
 * Decoding is the sparse TS decode (cost ∝ L0 · d_in); encoding is whatever `encode` is.
 */
export class ReconstructionEvaluator {
  private readonly accumulator: ReconstructionAccumulator;
  private readonly fired: Float64Array;
  private active = 0;
  private vectors = 0;

  constructor(
    private readonly sae: Sae,
    private readonly encode: EncodeRows,
  ) {
    this.accumulator = new ReconstructionAccumulator(sae.config.dIn);
    this.fired = new Float64Array(sae.config.dSae);
  }

  /** Encodes and decodes one batch, records it, and returns the reconstruction x̂ [rows, d_in]. */
  async add(x: Float32Array, rows: number): Promise<Float32Array> {
    const { dSae } = this.sae.config;
    const acts = await this.encode(x, rows);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < dSae; i++) {
        if (acts[r * dSae + i] !== 0) {
          this.active++;
          this.fired[i]++;
        }
      }
    }
    const xHat = decode(this.sae, acts, rows, inputScales(this.sae, x, rows));
    this.accumulator.add(x, xHat, rows);
    this.vectors += rows;
    return xHat;
  }

  result(): ReconstructionEval | null {
    if (this.vectors === 0) return null;
    let dead = 0;
    let dense = 0;
    for (const count of this.fired) {
      if (count === 0) dead++;
      if (count > DENSE_FIRING_FRACTION * this.vectors) dense++;
    }
    const latents = this.fired.length;
    return {
      ...this.accumulator.result(),
      l0: this.active / this.vectors,
      deadFraction: dead / latents,
      denseFraction: dense / latents,
      activityWindowTokens: this.vectors,
    };
  }
}

/** Evaluates on the first `maxVectors` vectors of a source (held-out data: all of it is held out). */
export async function evaluateSource(
  sae: Sae,
  source: ActivationSource,
  maxVectors: number,
  encode: EncodeRows,
  chunkRows = 1024,
): Promise<ReconstructionEval | null> {
  const evaluator = new ReconstructionEvaluator(sae, encode);
  const pieces = piecesInRange(source, 0, Math.min(maxVectors, source.rows));
  for await (const data of readPieces(pieces, chunkRows))
    await evaluator.add(data, data.length / source.width);
  return evaluator.result();
}
