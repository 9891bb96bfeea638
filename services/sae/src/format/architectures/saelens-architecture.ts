import type { GraphBuilder, Rng } from '@loupe/common';
import type { Sae, SaeConfig, SaeWeights } from '../sae-model.js';

type Json = Record<string, unknown>;

/** The fields and weights one SAELens architecture adds to the common ones. */
export type SaeLensFields = Pick<SaeConfig, 'k'>;
export type SaeLensWeights = Pick<SaeWeights, 'threshold'>;

/**
 * One `architecture` of SAELens' cfg.json, as read, written and encoded here: what its folder holds
 * beyond the common fields and weights, and its activation function, in float64 TypeScript (the
 * reference) and as ONNX. One file each in this folder, one line each in registry.ts. (The trainable
 * architectures in src/architectures/ each say which of these they are saved as.)
 */
export interface SaeLensArchitecture {
  /** weights beyond W_enc, b_enc, W_dec and b_dec */
  extraWeights: readonly (keyof SaeLensWeights)[];
  /** its fields of a cfg.json; `bad` makes the error for a wrong one */
  readFields(cfg: Json, dSae: number, bad: (problem: string) => Error): SaeLensFields;
  /** its fields, to write into cfg.json */
  writeFields(config: SaeConfig): Json;
  /** what is wrong with a config's fields of this architecture, if anything */
  checkFields(config: SaeConfig): string | undefined;
  /** one row's latent activations from its pre-activations, with SAELens' semantics */
  activate(sae: Sae, pre: Float64Array, acts: Float32Array): void;
  /** the same in a graph: activations [rows, d_sae] named `acts` from pre-activations `pre` */
  activationGraph(g: GraphBuilder, sae: Sae, pre: string): string;
  /** fields and extra weights of a random SAE for tests (drawn after the common weights) */
  random(rng: Rng, dSae: number, k: number | undefined): { fields: SaeLensFields; weights: SaeLensWeights };
}
