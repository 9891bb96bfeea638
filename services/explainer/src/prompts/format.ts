import type { ActivationRecord } from '../records/records.js';

/**
 * Bumped whenever a prompt, few-shot example or record format changes, so that scores computed with
 * different prompts are never compared as if they were the same measurement.
 */
export const PROMPT_VERSION = 'loupe-explainer-v1';

/** OpenAI's rule: a second listing of only the non-zero tokens when fewer than 20% are non-zero. */
const SPARSE_FRACTION = 0.2;

/**
 * floor(10·relu(a)/max) with max over the records shown together; all zeros when max ≤ 0 (a unit that
 * never fires in these records has nothing to show).
 */
export function normalizeActivations(records: readonly { activations: readonly number[] }[]): number[][] {
  let max = 0;
  for (const r of records) for (const a of r.activations) if (a > max) max = a;
  return records.map((r) =>
    r.activations.map((a) => (max <= 0 ? 0 : Math.floor((10 * Math.max(a, 0)) / max))),
  );
}

/** Tabs and newlines inside a token would break the line format; show them escaped. */
export function displayToken(token: string): string {
  return token.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

/**
 * The records as the explainer sees them: per record a block of `token<TAB>activation` lines between
 * markers, then, when fewer than 20% of all values are non-zero, the same records again with only the
 * non-zero lines, so sparse firing is not lost in a sea of zeros.
 */
export function formatRecords(records: readonly ActivationRecord[]): string {
  const normalized = normalizeActivations(records);
  const total = normalized.reduce((n, r) => n + r.length, 0);
  const nonZero = normalized.reduce((n, r) => n + r.filter((v) => v > 0).length, 0);
  const block = (onlyNonZero: boolean) =>
    records
      .map((record, i) => {
        const lines = record.tokens
          .map((token, j) => [token, normalized[i][j]] as const)
          .filter(([, v]) => !onlyNonZero || v > 0)
          .map(([token, v]) => `${displayToken(token)}\t${v}`);
        return ['<start>', ...lines, '<end>'].join('\n');
      })
      .join('\n\n');
  let text = block(false);
  if (total > 0 && nonZero / total < SPARSE_FRACTION)
    text += `\n\nSame activations, but with all zeros filtered out:\n${block(true)}`;
  return text;
}
