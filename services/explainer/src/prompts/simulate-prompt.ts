import type { ChatMessage } from '../llm/types.js';
import { FEW_SHOT_EXAMPLES } from './few-shot.js';
import { displayToken, normalizeActivations } from './format.js';

const SCALE =
  'Activations are on a 0-10 scale: 0 means the unit does not respond to the token, 10 is its strongest response. Most tokens are 0.';

// ---- (a) line format, read through log-probabilities ----

const LINES_SYSTEM = [
  'We are studying units (neurons or learned features) of a language model. Given an explanation of what a',
  'unit responds to, predict its activation at every token of a text.',
  SCALE,
  'Answer with one line per token, in order: the token exactly as given, a TAB, then a whole number 0-10.',
  'Nothing else.',
].join(' ');

const linesAsk = (explanation: string, tokens: readonly string[]) =>
  `Explanation: ${explanation}\nTokens:\n${tokens.map(displayToken).join('\n')}`;

/** Messages for the logprob simulator: the model writes `token<TAB>N` lines, one per token. */
export function lineSimulationMessages(explanation: string, tokens: readonly string[]): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: LINES_SYSTEM }];
  for (const example of FEW_SHOT_EXAMPLES.slice(0, 2)) {
    const record = example.records[0];
    const values = normalizeActivations([record])[0];
    messages.push({ role: 'user', content: linesAsk(example.explanation, record.tokens) });
    messages.push({
      role: 'assistant',
      content: record.tokens.map((t, i) => `${displayToken(t)}\t${values[i]}`).join('\n'),
    });
  }
  messages.push({ role: 'user', content: linesAsk(explanation, tokens) });
  return messages;
}

// ---- (b) JSON, several sequences per call ----

const JSON_SYSTEM = [
  'We are studying units (neurons or learned features) of a language model. Given an explanation of what a',
  'unit responds to, predict its activation at every token of each text.',
  SCALE,
  'Reply with JSON only: {"sequences":[{"activations":[{"token":"...","activation":0}, ...]}, ...]} with one',
  'entry per input sequence in the same order, and one {"token","activation"} per token in the same order,',
  'tokens copied exactly.',
].join(' ');

const jsonAsk = (explanation: string, sequences: readonly (readonly string[])[]) =>
  `Explanation: ${explanation}\n${JSON.stringify({ sequences: sequences.map((tokens) => ({ tokens })) })}`;

/** Messages for the JSON simulator over a batch of sequences. */
export function jsonSimulationMessages(
  explanation: string,
  sequences: readonly (readonly string[])[],
): ChatMessage[] {
  const example = FEW_SHOT_EXAMPLES[0];
  const values = normalizeActivations(example.records);
  return [
    { role: 'system', content: JSON_SYSTEM },
    {
      role: 'user',
      content: jsonAsk(
        example.explanation,
        example.records.map((r) => r.tokens),
      ),
    },
    {
      role: 'assistant',
      content: JSON.stringify({
        sequences: example.records.map((r, i) => ({
          activations: r.tokens.map((token, j) => ({ token, activation: values[i][j] })),
        })),
      }),
    },
    { role: 'user', content: jsonAsk(explanation, sequences) },
  ];
}
