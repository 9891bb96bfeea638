/** Mean of the true-positive and true-negative rates; null when a class is missing (undefined, not 0.5). */
export function balancedAccuracy(
  judged: readonly { label: boolean; answer: boolean }[],
): { value: number; reason?: undefined } | { value: null; reason: string } {
  let tp = 0;
  let p = 0;
  let tn = 0;
  let n = 0;
  for (const { label, answer } of judged) {
    if (label) {
      p += 1;
      if (answer) tp += 1;
    } else {
      n += 1;
      if (!answer) tn += 1;
    }
  }
  if (p === 0) return { value: null, reason: 'no positive examples were judged' };
  if (n === 0) return { value: null, reason: 'no negative examples were judged' };
  return { value: (tp / p + tn / n) / 2 };
}
