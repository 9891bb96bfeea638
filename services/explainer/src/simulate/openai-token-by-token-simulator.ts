import type { ChatModel, UsageMeter } from '../llm/types.js';
import { singleTokenSimulationMessages } from '../prompts/openai-simulate-prompt.js';
import { openAiExpectedValue } from './openai-expected-value.js';
import type { SimulationOutcome, Simulator } from './types.js';

// OpenAI reads 15 alternatives; chat servers allow up to 20.
const TOP_LOGPROBS = 15;

/**
 * OpenAI's token-by-token simulator (ExplanationTokenByTokenSimulator) over chat completions: one
 * request per token, showing the text up to that token only, asking for a single reply token whose
 * top log-probabilities give the distribution over "0"…"10". Causal, and it works on chat models that
 * return logprobs, at the price of one call per token.
 */
export class OpenAiTokenByTokenSimulator implements Simulator {
  readonly method = 'openai-token-by-token' as const;
  readonly model: string;

  constructor(private readonly llm: ChatModel) {
    this.model = llm.model;
  }

  async simulate(
    explanation: string,
    sequences: readonly (readonly string[])[],
    meter?: UsageMeter,
  ): Promise<SimulationOutcome[]> {
    return Promise.all(sequences.map((tokens) => this.simulateOne(explanation, tokens, meter)));
  }

  private async simulateOne(
    explanation: string,
    tokens: readonly string[],
    meter?: UsageMeter,
  ): Promise<SimulationOutcome> {
    const replies = await Promise.all(
      tokens.map((_, index) =>
        this.llm.chat(
          {
            messages: singleTokenSimulationMessages(explanation, tokens, index),
            temperature: 0,
            maxTokens: 1,
            topLogprobs: TOP_LOGPROBS,
          },
          meter,
        ),
      ),
    );
    const values: number[] = [];
    for (const [index, reply] of replies.entries()) {
      // No logprobs at all is the server lacking the feature, not a slot without digits.
      if (!reply.logprobs || reply.logprobs.length === 0)
        return {
          ok: false,
          failure: `the server returned no logprobs for token ${index + 1} (the openai-token-by-token simulator needs chat logprobs)`,
        };
      const top = reply.logprobs[0].top_logprobs;
      values.push(openAiExpectedValue(Object.fromEntries(top.map((t) => [t.token, t.logprob]))));
    }
    return { ok: true, values };
  }
}
