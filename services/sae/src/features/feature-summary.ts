/**
 * What an encoded text looks like to a reader: per token its largest non-zero features, and over the
 * whole text the features with the largest values. Plain functions over dense [rows, d_sae] latents.
 */

export interface TokenTop {
  features: { feature: number; value: number }[];
  /** non-zero features at this token, before the cut */
  l0: number;
}

export interface FeatureMax {
  feature: number;
  maxValue: number;
  /** tokens where it is non-zero */
  tokens: number;
  /** first position of the max */
  maxPosition: number;
}

/** Per row, the `perToken` largest non-zero latents (ties: lower index first) and the row's L0. */
export function topPerToken(acts: Float32Array, rows: number, dSae: number, perToken: number): TokenTop[] {
  const out: TokenTop[] = [];
  for (let r = 0; r < rows; r++) {
    const row = acts.subarray(r * dSae, (r + 1) * dSae);
    const active: number[] = [];
    for (let i = 0; i < dSae; i++) if (row[i] !== 0) active.push(i);
    active.sort((a, b) => row[b] - row[a] || a - b);
    out.push({
      features: active.slice(0, perToken).map((feature) => ({ feature, value: row[feature] })),
      l0: active.length,
    });
  }
  return out;
}

/** The `top` latents with the largest positive value anywhere in the text (ties: lower index first). */
export function topOverText(acts: Float32Array, rows: number, dSae: number, top: number): FeatureMax[] {
  const max = new Float32Array(dSae);
  const at = new Int32Array(dSae).fill(-1);
  const count = new Int32Array(dSae);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < dSae; i++) {
      const v = acts[r * dSae + i];
      if (v === 0) continue;
      count[i]++;
      if (at[i] === -1 || v > max[i]) {
        max[i] = v;
        at[i] = r;
      }
    }
  }
  const fired: number[] = [];
  for (let i = 0; i < dSae; i++) if (at[i] !== -1 && max[i] > 0) fired.push(i);
  fired.sort((a, b) => max[b] - max[a] || a - b);
  return fired.slice(0, top).map((feature) => ({
    feature,
    maxValue: max[feature],
    tokens: count[feature],
    maxPosition: at[feature],
  }));
}
