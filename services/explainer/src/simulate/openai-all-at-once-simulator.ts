import type { CompletionLogprobs, CompletionModel } from '../llm/completions.js';
import type { UsageMeter } from '../llm/types.js';
import { allAtOnceSimulationPrompt, UNKNOWN_ACTIVATION } from '../prompts/openai-simulate-prompt.js';
import { openAiExpectedValue } from './openai-expected-value.js';
import type { SimulationOutcome, Simulator } from './types.js';

// OpenAI asks for 15 alternatives per position; vLLM's default --max-logprobs (20) allows it.
const TOP_LOGPROBS = 15;

/**
 * OpenAI's all-at-once simulator (ExplanationNeuronSimulator) over a `/completions` endpoint: one prompt
 * per sequence with every slot "unknown", nothing generated, and the model's distribution at each
 * "unknown" read from the prompt's own log-probabilities (`echo`). Causal by construction: the
 * prediction for token i conditions on tokens ≤ i only. Needs a server that returns prompt logprobs
 * (vLLM's OpenAI-compatible server does; OpenAI's hosted chat models do not).
 */
export class OpenAiAllAtOnceSimulator implements Simulator {
  readonly method = 'openai-all-at-once' as const;
  readonly model: string;

  constructor(private readonly llm: CompletionModel) {
    this.model = llm.model;
  }

  async simulate(
    explanation: string,
    sequences: readonly (readonly string[])[],
    meter?: UsageMeter,
  ): Promise<SimulationOutcome[]> {
    return Promise.all(
      sequences.map(async (tokens) => {
        const prompt = allAtOnceSimulationPrompt(explanation, tokens);
        // OpenAI sends max_tokens 0; vLLM requires at least 1. The generated token lies after the
        // prompt and is never read.
        const reply = await this.llm.complete(
          { prompt, maxTokens: 1, echo: true, logprobs: TOP_LOGPROBS, temperature: 0 },
          meter,
        );
        if (!reply.logprobs)
          return {
            ok: false,
            failure:
              'the server returned no prompt logprobs for echo (the openai-all-at-once simulator needs a completions endpoint with echo, e.g. vLLM)',
          };
        return readEchoedSlots(reply.text, reply.logprobs, prompt.length, tokens.length);
      }),
    );
  }
}

/**
 * The expected value at each "unknown" slot of the last <start>…<end> block of the echoed prompt: a slot
 * is an "unknown" token right after a TAB. Only a slot count that differs from the token count fails
 * the sequence; a slot without digits among its alternatives is 0 (OpenAI's rule).
 */
export function readEchoedSlots(
  text: string,
  logprobs: CompletionLogprobs,
  promptLength: number,
  tokenCount: number,
): SimulationOutcome {
  const scoringStart = text.lastIndexOf('<start>', promptLength);
  if (scoringStart < 0) return { ok: false, failure: 'the echoed prompt has no <start> marker' };
  const values: number[] = [];
  for (let i = 1; i < logprobs.tokens.length && values.length < tokenCount; i++) {
    if (logprobs.textOffset[i] >= promptLength) break;
    if (logprobs.textOffset[i] < scoringStart) continue;
    if (!logprobs.tokens[i - 1].endsWith('\t') || logprobs.tokens[i] !== UNKNOWN_ACTIVATION) continue;
    values.push(openAiExpectedValue(logprobs.topLogprobs[i]));
  }
  if (values.length !== tokenCount)
    return {
      ok: false,
      failure: `found ${values.length} "unknown" slots in the echoed prompt for ${tokenCount} tokens (the server's tokenizer may merge the TAB with "unknown")`,
    };
  return { ok: true, values };
}
