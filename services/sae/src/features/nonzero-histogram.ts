/**
 * Per feature, counts of its non-zero values over equal bins from 0 to `max` (the dataset max), from
 * sample windows' dense activations [tokens, width]. Zeros are left out: for a sparse feature they are
 * nearly every token and would flatten the shape of what it does when it fires.
 */
export function nonZeroHistogram(
  windows: Iterable<Float32Array>,
  width: number,
  max: ArrayLike<number>,
  bins: number,
): Int32Array {
  const counts = new Int32Array(width * bins);
  for (const acts of windows) {
    for (let i = 0; i < acts.length; i++) {
      const v = acts[i];
      if (!(v > 0)) continue;
      const f = i % width;
      const bin = Math.min(bins - 1, Math.floor((v / max[f]) * bins));
      counts[f * bins + bin] += 1;
    }
  }
  return counts;
}
