import type { LlmClientOptions } from './client.js';
import { countLlmCall, type LlmPrices, UNPRICED } from './cost.js';
import { countTextTokens } from './count-tokens.js';
import { LlmError } from './errors.js';
import { type HttpRequestError, RetryingJsonPost, snippet } from './http-json.js';
import type { TokenUsage, UsageMeter } from './types.js';

/** The parts of the legacy `/completions` protocol the all-at-once simulator uses. */
export interface CompletionRequest {
  prompt: string;
  maxTokens: number;
  /** Return the prompt's own tokens with their log-probabilities before the completion. */
  echo?: boolean;
  /** Alternatives per position (OpenAI allows up to 5 today, vLLM up to its --max-logprobs). */
  logprobs?: number;
  temperature?: number;
}

/** Per-token log-probabilities in the legacy format: parallel arrays over prompt (with echo) + completion. */
export interface CompletionLogprobs {
  tokens: string[];
  /** null where the server has none (the first prompt token has no context). */
  topLogprobs: (Record<string, number> | null)[];
  /** Character offset of each token in `text`. */
  textOffset: number[];
}

export interface CompletionResult {
  text: string;
  logprobs: CompletionLogprobs | null;
  usage: TokenUsage;
  usageSource: 'server' | 'estimated';
  attempts: number;
  model: string;
}

/** Anything that answers legacy completion requests: the HTTP client, or a stand-in in tests. */
export interface CompletionModel {
  readonly model: string;
  complete(request: CompletionRequest, meter?: UsageMeter): Promise<CompletionResult>;
}

/**
 * Client for `/completions` on an OpenAI-compatible server (vLLM, llama.cpp, a hosted API that still
 * offers it), with the same retries, concurrency bound and cost accounting as the chat client.
 */
export class CompletionsClient implements CompletionModel {
  readonly model: string;
  private readonly http: RetryingJsonPost;
  private readonly prices: LlmPrices;

  constructor(options: LlmClientOptions) {
    this.model = options.model;
    this.prices = options.prices ?? UNPRICED;
    this.http = new RetryingJsonPost(`${options.baseUrl.replace(/\/+$/, '')}/completions`, options);
  }

  async complete(request: CompletionRequest, meter?: UsageMeter): Promise<CompletionResult> {
    const body: Record<string, unknown> = {
      model: this.model,
      prompt: request.prompt,
      max_tokens: request.maxTokens,
      temperature: request.temperature ?? 0,
    };
    if (request.echo) body.echo = true;
    if (request.logprobs !== undefined) body.logprobs = request.logprobs;
    let sent: { reply: unknown; attempts: number };
    try {
      sent = await this.http.post(body);
    } catch (error) {
      const e = error as HttpRequestError;
      throw new LlmError(`LLM server ${this.http.url} (model ${this.model}) ${e.message}`, e.status);
    }
    const reply = sent.reply as { choices?: unknown[]; usage?: unknown; model?: unknown };
    const choice = reply?.choices?.[0] as { text?: unknown; logprobs?: unknown } | undefined;
    if (typeof choice?.text !== 'string')
      throw new LlmError(
        `LLM server ${this.http.url} sent a reply without choices[0].text: ${snippet(JSON.stringify(reply))}`,
      );
    const usage = parseUsage(reply.usage);
    const result: CompletionResult = {
      text: choice.text,
      logprobs: parseCompletionLogprobs(choice.logprobs),
      usage: usage ?? {
        promptTokens: await countTextTokens(request.prompt),
        // with echo the text starts with the prompt; only what follows was generated
        completionTokens: await countTextTokens(
          request.echo ? choice.text.slice(request.prompt.length) : choice.text,
        ),
      },
      usageSource: usage ? 'server' : 'estimated',
      attempts: sent.attempts,
      model: typeof reply.model === 'string' ? reply.model : this.model,
    };
    countLlmCall(result, this.prices, meter);
    return result;
  }
}

function parseUsage(value: unknown): TokenUsage | undefined {
  const usage = value as { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined;
  if (typeof usage?.prompt_tokens !== 'number' || typeof usage?.completion_tokens !== 'number')
    return undefined;
  return { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens };
}

/** The legacy `logprobs` object, or null when it is missing or its arrays disagree in length. */
export function parseCompletionLogprobs(value: unknown): CompletionLogprobs | null {
  const lp = value as { tokens?: unknown; top_logprobs?: unknown; text_offset?: unknown } | null;
  if (!lp || !Array.isArray(lp.tokens) || !Array.isArray(lp.top_logprobs) || !Array.isArray(lp.text_offset))
    return null;
  const n = lp.tokens.length;
  if (lp.top_logprobs.length !== n || lp.text_offset.length !== n) return null;
  return {
    tokens: lp.tokens.map(String),
    topLogprobs: lp.top_logprobs.map((top) =>
      top && typeof top === 'object' && !Array.isArray(top)
        ? Object.fromEntries(
            Object.entries(top as Record<string, unknown>).filter(([, v]) => typeof v === 'number'),
          )
        : null,
    ) as (Record<string, number> | null)[],
    textOffset: lp.text_offset.map(Number),
  };
}
