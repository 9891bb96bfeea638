import type { ChatModel, TokenLogprob, TopLogprob, UsageMeter } from '../llm/types.js';
import { displayToken } from '../prompts/format.js';
import { lineSimulationMessages } from '../prompts/simulate-prompt.js';
import type { SimulationOutcome, Simulator } from './types.js';

// Enough alternatives to see all of "0"…"10" where the model spreads its belief (OpenAI allows 20).
const TOP_LOGPROBS = 15;
const DIGIT_TOKEN = /^(10|[0-9])$/;

/**
 * Loupe's line simulator, on chat completions: the model writes `token<TAB>N` per token, and the
 * prediction at each token is the expected value of N under the model's distribution over "0"…"10" at
 * that slot (normalised over the numeric alternatives shown), not the sampled digit. One call per
 * sequence. Not OpenAI's simulator: the model has seen the whole sequence before it writes the first
 * line, and each digit follows its own earlier digits, so predictions are not causal; its scores are
 * not comparable with OpenAI's (use openai-all-at-once or openai-token-by-token for that).
 */
export class LineLogprobSimulator implements Simulator {
  readonly method = 'line-logprobs' as const;
  readonly model: string;

  constructor(private readonly llm: ChatModel) {
    this.model = llm.model;
  }

  async simulate(
    explanation: string,
    sequences: readonly (readonly string[])[],
    meter?: UsageMeter,
  ): Promise<SimulationOutcome[]> {
    return Promise.all(
      sequences.map(async (tokens) => {
        const reply = await this.llm.chat(
          {
            messages: lineSimulationMessages(explanation, tokens),
            temperature: 0,
            topLogprobs: TOP_LOGPROBS,
            maxTokens: tokens.length * 8 + 16,
          },
          meter,
        );
        if (!reply.logprobs)
          return {
            ok: false,
            failure: 'the server returned no logprobs (use the json simulator for servers without them)',
          };
        return readLineSimulation(reply.content, reply.logprobs, tokens);
      }),
    );
  }
}

/**
 * Checks that the reply repeats the tokens, one line each, and reads the expected activation at each
 * slot after a TAB from the log-probabilities. Any mismatch is a failure, never a silent zero.
 */
export function readLineSimulation(
  content: string,
  logprobs: readonly TokenLogprob[],
  tokens: readonly string[],
): SimulationOutcome {
  const lines = content.split('\n').filter((line) => line.trim() !== '');
  if (lines.length !== tokens.length)
    return { ok: false, failure: `reply has ${lines.length} lines for ${tokens.length} tokens` };
  for (let i = 0; i < tokens.length; i++) {
    const tab = lines[i].lastIndexOf('\t');
    const shown = tab < 0 ? lines[i] : lines[i].slice(0, tab);
    if (tab < 0 || shown !== displayToken(tokens[i]))
      return {
        ok: false,
        failure: `line ${i + 1} is ${JSON.stringify(lines[i])}, expected token ${JSON.stringify(tokens[i])} then a TAB`,
      };
  }
  const values: number[] = [];
  let afterTab = false;
  for (const entry of logprobs) {
    if (afterTab) {
      const value = expectedValue(entry.top_logprobs, (t) => t);
      if (value === undefined) return { ok: false, failure: noDigits(values.length) };
      values.push(value);
      afterTab = false;
      continue;
    }
    const tab = entry.token.lastIndexOf('\t');
    if (tab < 0) continue;
    if (tab === entry.token.length - 1) {
      afterTab = true;
      continue;
    }
    // The tokenizer merged the TAB with the digit ("\t7"): read the alternatives that do the same.
    const value = expectedValue(entry.top_logprobs, (t) =>
      t.includes('\t') ? t.slice(t.lastIndexOf('\t') + 1) : '',
    );
    if (value === undefined) return { ok: false, failure: noDigits(values.length) };
    values.push(value);
  }
  if (values.length !== tokens.length)
    return {
      ok: false,
      failure: `found ${values.length} activation slots in the logprobs for ${tokens.length} tokens`,
    };
  return { ok: true, values };
}

const noDigits = (i: number) => `no "0"-"10" among the top logprobs at token ${i + 1}`;

/** Σ p(n)·n / Σ p(n) over the alternatives that are the numbers 0–10. */
export function expectedValue(
  alternatives: readonly TopLogprob[],
  text: (token: string) => string,
): number | undefined {
  let mass = 0;
  let sum = 0;
  for (const alt of alternatives) {
    const digits = text(alt.token).trim();
    if (!DIGIT_TOKEN.test(digits)) continue;
    const p = Math.exp(alt.logprob);
    mass += p;
    sum += p * Number(digits);
  }
  return mass > 0 ? sum / mass : undefined;
}
