/** A correlation, or null with the reason it is undefined (never NaN, which JSON cannot carry). */
export type Correlation = { value: number; reason?: undefined } | { value: null; reason: string };

/**
 * Pearson correlation in float64, two-pass (means first), which stays accurate when activations share a
 * large offset. A side with zero variance makes the correlation undefined: null, with which side.
 */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): Correlation {
  if (x.length !== y.length) throw new RangeError(`pearson: ${x.length} vs ${y.length} values`);
  const n = x.length;
  if (n < 2) return { value: null, reason: `needs at least 2 tokens, got ${n}` };
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx;
    const dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0) return { value: null, reason: 'true activations are constant' };
  if (syy === 0) return { value: null, reason: 'simulated activations are constant' };
  return { value: Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy))) };
}

/** Pearson over all tokens of all sequences joined into one list (OpenAI's definition, not a mean). */
export function joinedPearson(
  pairs: readonly { actual: readonly number[]; simulated: readonly number[] }[],
): Correlation {
  return pearson(
    pairs.flatMap((p) => p.actual),
    pairs.flatMap((p) => p.simulated),
  );
}
