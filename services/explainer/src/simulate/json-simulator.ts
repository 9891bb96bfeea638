import type { ChatModel, UsageMeter } from '../llm/types.js';
import { displayToken } from '../prompts/format.js';
import { jsonSimulationMessages } from '../prompts/simulate-prompt.js';
import type { SimulationOutcome, Simulator } from './types.js';

export interface JsonSimulatorOptions {
  /** Context the server allows (prompt + reply), in tokens. */
  contextTokens?: number;
  /** Upper bound on sequences per call, whatever the context allows. */
  maxSequencesPerCall?: number;
}

// Measured on GPT tokenizers: each `{"token":"x","activation":3},` costs about 10 tokens in the reply,
// and each token of the input list about 3. The fixed part covers the instructions and the example.
const REPLY_TOKENS_PER_TOKEN = 12;
const PROMPT_TOKENS_PER_TOKEN = 4;
const FIXED_PROMPT_TOKENS = 900;

/**
 * The model fills `{"activations":[{"token","activation"}]}` for every sequence at temperature 0,
 * with as many sequences per call as the context allows, so a unit costs a handful of calls rather than
 * one per sequence. Works on servers without logprobs.
 */
export class JsonSimulator implements Simulator {
  readonly method = 'json' as const;
  readonly model: string;

  constructor(
    private readonly llm: ChatModel,
    private readonly options: JsonSimulatorOptions = {},
  ) {
    this.model = llm.model;
  }

  async simulate(
    explanation: string,
    sequences: readonly (readonly string[])[],
    meter?: UsageMeter,
  ): Promise<SimulationOutcome[]> {
    const batches = packBatches(
      sequences.map((s) => s.length * (REPLY_TOKENS_PER_TOKEN + PROMPT_TOKENS_PER_TOKEN)),
      (this.options.contextTokens ?? 16_000) - FIXED_PROMPT_TOKENS,
      this.options.maxSequencesPerCall ?? 64,
    );
    const outcomes: SimulationOutcome[] = new Array(sequences.length);
    await Promise.all(
      batches.map(async (indices) => {
        const batch = indices.map((i) => sequences[i]);
        const reply = await this.llm.chat(
          {
            messages: jsonSimulationMessages(explanation, batch),
            temperature: 0,
            responseFormat: 'json_object',
            maxTokens: batch.reduce((n, s) => n + s.length * REPLY_TOKENS_PER_TOKEN, 32),
          },
          meter,
        );
        const read = readJsonSimulation(reply.content, batch);
        indices.forEach((seq, k) => {
          outcomes[seq] = read[k];
        });
      }),
    );
    return outcomes;
  }
}

/** Greedy packing in order: a new call when the next sequence would not fit. */
export function packBatches(costs: readonly number[], budget: number, maxPerBatch: number): number[][] {
  const batches: number[][] = [];
  let current: number[] = [];
  let used = 0;
  costs.forEach((cost, i) => {
    if (current.length > 0 && (used + cost > budget || current.length >= maxPerBatch)) {
      batches.push(current);
      current = [];
      used = 0;
    }
    current.push(i);
    used += cost;
  });
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Reads a JSON reply for a batch; each sequence that does not match its tokens is its own failure. */
export function readJsonSimulation(
  content: string,
  batch: readonly (readonly string[])[],
): SimulationOutcome[] {
  const fail = (failure: string): SimulationOutcome[] => batch.map(() => ({ ok: false, failure }));
  let parsed: unknown;
  try {
    parsed = JSON.parse(content.trim().replace(/^```(?:json)?\s*|\s*```$/g, ''));
  } catch {
    return fail(`reply is not JSON: ${content.slice(0, 200)}`);
  }
  let list = (parsed as { sequences?: unknown })?.sequences;
  // A single sequence may come back as the bare `{"activations":[...]}` object.
  if (
    list === undefined &&
    batch.length === 1 &&
    Array.isArray((parsed as { activations?: unknown })?.activations)
  )
    list = [parsed];
  if (!Array.isArray(list)) return fail('reply has no "sequences" list');
  return batch.map((tokens, i) => readSequence(list[i], tokens, i));
}

function readSequence(value: unknown, tokens: readonly string[], index: number): SimulationOutcome {
  const activations = (value as { activations?: unknown })?.activations;
  if (!Array.isArray(activations))
    return { ok: false, failure: `sequence ${index + 1}: no "activations" list` };
  if (activations.length !== tokens.length)
    return {
      ok: false,
      failure: `sequence ${index + 1}: ${activations.length} activations for ${tokens.length} tokens`,
    };
  const values: number[] = [];
  for (let j = 0; j < tokens.length; j++) {
    const { token, activation } = (activations[j] ?? {}) as { token?: unknown; activation?: unknown };
    if (token !== tokens[j] && token !== displayToken(tokens[j]))
      return {
        ok: false,
        failure: `sequence ${index + 1}, token ${j + 1}: got ${JSON.stringify(token)}, expected ${JSON.stringify(tokens[j])}`,
      };
    const v = typeof activation === 'string' ? Number(activation) : activation;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 10)
      return {
        ok: false,
        failure: `sequence ${index + 1}, token ${j + 1}: activation ${JSON.stringify(activation)} is not a number 0-10`,
      };
    values.push(v);
  }
  return { ok: true, values };
}
