// The tokens OpenAI's simulators read: exactly "0" … "10" (no spaces, no other spellings).
const ACTIVATION_TOKENS = new Set(Array.from({ length: 11 }, (_, i) => String(i)));

/**
 * OpenAI's expected activation at one slot: Σ n·p(n) / Σ p(n) over the alternatives that are exactly
 * "0"…"10", the probabilities renormalised over those alone. A slot where no such token is among the
 * top log-probabilities counts as 0 (their dot product over an empty distribution), rather than failing
 * the sequence: failures that drop sequences selectively would shift the score.
 */
export function openAiExpectedValue(
  topLogprobs: Readonly<Record<string, number>> | null | undefined,
): number {
  let mass = 0;
  let sum = 0;
  for (const [token, logprob] of Object.entries(topLogprobs ?? {})) {
    if (!ACTIVATION_TOKENS.has(token)) continue;
    const p = Math.exp(logprob);
    mass += p;
    sum += p * Number(token);
  }
  return mass > 0 ? sum / mass : 0;
}
