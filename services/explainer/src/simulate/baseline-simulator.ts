import { BASELINE_MODEL, tokenKey } from '../explain/baseline-explainer.js';
import type { SimulationOutcome, Simulator } from './types.js';

// Words that describe rather than name what the unit fires on, in free-text explanations.
const STOPWORDS = new Set(
  'a an and the of on in at to for with by or is are be as it its this that these those word words token tokens fires fire firing mostly after before like such especially often usually when which unit neuron feature'.split(
    ' ',
  ),
);
// Firing on the named token in the wrong context still counts for something.
const OUT_OF_CONTEXT = 5;

/** The tokens an explanation names: its quoted strings, or failing that its content words. */
export function explanationTerms(explanation: string): { terms: Set<string>; context: Set<string> } {
  const [main, after] = explanation.split(/,?\s+mostly after\s+/i);
  return { terms: termsOf(main), context: after === undefined ? new Set() : termsOf(after) };
}

function termsOf(text: string): Set<string> {
  const quoted = [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => {
    try {
      return JSON.parse(`"${m[1]}"`) as string;
    } catch {
      return m[1];
    }
  });
  if (quoted.length > 0) return new Set(quoted.map(tokenKey).filter((t) => t !== ''));
  return new Set(
    text
      .toLowerCase()
      .split(/[^\p{L}\p{N}]+/u)
      .filter((w) => w.length > 0 && !STOPWORDS.has(w)),
  );
}

/**
 * The matching baseline simulator: 10 where a token is one the explanation names (and follows the named
 * context, when there is one), 5 when it is named but out of context, else 0. No network, deterministic.
 */
export class BaselineSimulator implements Simulator {
  readonly method = 'baseline' as const;
  readonly model = BASELINE_MODEL;

  async simulate(
    explanation: string,
    sequences: readonly (readonly string[])[],
  ): Promise<SimulationOutcome[]> {
    const { terms, context } = explanationTerms(explanation);
    return sequences.map((tokens) => ({
      ok: true,
      values: tokens.map((token, i) => {
        if (!terms.has(tokenKey(token))) return 0;
        if (context.size === 0 || (i > 0 && context.has(tokenKey(tokens[i - 1])))) return 10;
        return OUT_OF_CONTEXT;
      }),
    }));
  }
}
