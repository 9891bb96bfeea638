import type { UnitRecords } from '../records/records.js';

/** The name every output carries for the built-in statistical explainer and simulator. */
export const BASELINE_MODEL = 'baseline-statistical';

export interface BaselineExplainerOptions {
  /** Most tokens named in the explanation. */
  maxTerms?: number;
  /** Stop adding tokens once they cover this share of the firing mass. */
  coverage?: number;
}

/** Tokens compare trimmed and case-folded: " Dog" and "dog" are the same word to a reader. */
export const tokenKey = (token: string) => token.trim().toLowerCase();

interface TermStats {
  fire: number;
  countTop: number;
  countRandom: number;
  before: Map<string, number>;
}

// Below this mean normalised activation a token is background, however often it appears in top records.
const MIN_MEAN_ACTIVATION = 0.2;
// A context is named only when one preceding token carries this share of the first term's firing mass.
const CONTEXT_SHARE = 0.6;

/**
 * A baseline that needs no language model: which tokens carry the unit's firing mass in the top records,
 * against how common they are in random text (a per-token KL contribution), written as one sentence
 * naming them — and the token before them when one context dominates.
 */
export function baselineExplanation(records: UnitRecords, options: BaselineExplainerOptions = {}): string {
  const stats = new Map<string, TermStats>();
  const entry = (key: string) => {
    const known = stats.get(key);
    if (known) return known;
    const fresh: TermStats = { fire: 0, countTop: 0, countRandom: 0, before: new Map() };
    stats.set(key, fresh);
    return fresh;
  };
  let max = 0;
  for (const r of records.top) for (const a of r.activations) max = Math.max(max, a);
  if (max <= 0) return 'does not fire on any of the records shown.';
  let totalFire = 0;
  let totalTop = 0;
  for (const r of records.top)
    r.tokens.forEach((token, i) => {
      const key = tokenKey(token);
      if (key === '') return;
      const s = entry(key);
      const a = Math.max(r.activations[i], 0) / max;
      s.fire += a;
      s.countTop += 1;
      totalFire += a;
      totalTop += 1;
      if (i > 0 && a > 0) {
        const prev = tokenKey(r.tokens[i - 1]);
        s.before.set(prev, (s.before.get(prev) ?? 0) + a);
      }
    });
  let totalRandom = 0;
  for (const r of records.random)
    for (const token of r.tokens) {
      const key = tokenKey(token);
      if (key === '') continue;
      entry(key).countRandom += 1;
      totalRandom += 1;
    }
  // With no random records, the top records are their own base rate (still favours concentrated mass).
  const vocabulary = stats.size;
  const baseRate = (s: TermStats) =>
    totalRandom > 0
      ? (s.countRandom + 1) / (totalRandom + vocabulary)
      : (s.countTop + 1) / (totalTop + vocabulary);
  const ranked = [...stats.entries()]
    .filter(([, s]) => s.fire > 0 && s.fire / s.countTop >= MIN_MEAN_ACTIVATION)
    .map(([key, s]) => {
      const share = s.fire / totalFire;
      return { key, s, share, gain: share * Math.log(share / baseRate(s)) };
    })
    .filter((t) => t.gain > 0)
    .sort((a, b) => b.gain - a.gain || (a.key < b.key ? -1 : 1));
  if (ranked.length === 0) return 'fires weakly and evenly across many tokens.';
  const terms: typeof ranked = [];
  let covered = 0;
  for (const t of ranked) {
    if (terms.length >= (options.maxTerms ?? 5) || covered >= (options.coverage ?? 0.8)) break;
    terms.push(t);
    covered += t.share;
  }
  const quoted = terms.map((t) => JSON.stringify(t.key));
  const list = quoted.length === 1 ? quoted[0] : `${quoted.slice(0, -1).join(', ')} and ${quoted.at(-1)}`;
  let sentence = `the token${quoted.length === 1 ? '' : 's'} ${list}`;
  const [context, mass] = [...terms[0].s.before.entries()].sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
  if (context !== '' && mass / terms[0].s.fire >= CONTEXT_SHARE)
    sentence += `, mostly after ${JSON.stringify(context)}`;
  return `${sentence}.`;
}
