import { countLlmCall, type LlmPrices, UNPRICED } from './cost.js';
import { countPromptTokens, countTextTokens } from './count-tokens.js';
import { LlmError } from './errors.js';
import { type HttpClientOptions, HttpRequestError, RetryingJsonPost, snippet } from './http-json.js';
import type {
  ChatModel,
  ChatRequest,
  ChatResult,
  TokenLogprob,
  TokenUsage,
  TopLogprob,
  UsageMeter,
} from './types.js';

export { parseRetryAfter } from './http-json.js';

export interface LlmClientOptions extends HttpClientOptions {
  /** e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1 (the client appends /chat/completions) */
  baseUrl: string;
  model: string;
  /** for loupe_llm_cost_usd_total; default unpriced */
  prices?: LlmPrices;
}

/**
 * Client for any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp server).
 * Retries 429 (honouring Retry-After), 5xx, timeouts and dropped connections with exponential backoff
 * and jitter; bounds requests in flight; reports token usage per call.
 */
export class LlmClient implements ChatModel {
  readonly model: string;
  private readonly http: RetryingJsonPost;
  private readonly prices: LlmPrices;

  constructor(options: LlmClientOptions) {
    this.model = options.model;
    this.prices = options.prices ?? UNPRICED;
    this.http = new RetryingJsonPost(`${options.baseUrl.replace(/\/+$/, '')}/chat/completions`, options);
  }

  async chat(request: ChatRequest, meter?: UsageMeter): Promise<ChatResult> {
    let sent: { reply: unknown; attempts: number };
    try {
      sent = await this.http.post(this.requestBody(request));
    } catch (error) {
      const e = error as HttpRequestError;
      throw new LlmError(`LLM server ${this.http.url} (model ${this.model}) ${e.message}`, e.status);
    }
    const result = await this.readReply(sent.reply, request, sent.attempts);
    countLlmCall(result, this.prices, meter);
    return result;
  }

  private requestBody(request: ChatRequest): Record<string, unknown> {
    const body: Record<string, unknown> = {
      model: this.model,
      messages: request.messages,
      temperature: request.temperature ?? 0,
    };
    if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens;
    if (request.topLogprobs !== undefined) {
      body.logprobs = true;
      body.top_logprobs = request.topLogprobs;
    }
    if (request.responseFormat) body.response_format = { type: request.responseFormat };
    return body;
  }

  private async readReply(reply: unknown, request: ChatRequest, attempts: number): Promise<ChatResult> {
    const choice = (reply as { choices?: unknown[] })?.choices?.[0] as
      | { message?: { content?: unknown }; logprobs?: { content?: unknown } | null }
      | undefined;
    const content = choice?.message?.content;
    if (typeof content !== 'string')
      throw new LlmError(
        `LLM server ${this.http.url} sent a reply without choices[0].message.content: ${snippet(JSON.stringify(reply))}`,
      );
    const logprobs = parseLogprobs(choice?.logprobs?.content);
    const usage = parseUsage((reply as { usage?: unknown }).usage);
    return {
      content,
      logprobs,
      usage: usage ?? {
        promptTokens: await countPromptTokens(request.messages),
        completionTokens: await countTextTokens(content),
      },
      usageSource: usage ? 'server' : 'estimated',
      attempts,
      model:
        typeof (reply as { model?: unknown }).model === 'string'
          ? (reply as { model: string }).model
          : this.model,
    };
  }
}

function parseUsage(value: unknown): TokenUsage | undefined {
  const usage = value as { prompt_tokens?: unknown; completion_tokens?: unknown } | undefined;
  if (typeof usage?.prompt_tokens !== 'number' || typeof usage?.completion_tokens !== 'number')
    return undefined;
  return { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens };
}

function parseLogprobs(value: unknown): TokenLogprob[] | null {
  if (!Array.isArray(value)) return null;
  const isTop = (t: unknown): t is TopLogprob =>
    typeof (t as TopLogprob)?.token === 'string' && typeof (t as TopLogprob)?.logprob === 'number';
  return value.filter(isTop).map((t) => ({
    token: t.token,
    logprob: t.logprob,
    top_logprobs: Array.isArray((t as TokenLogprob).top_logprobs)
      ? (t as TokenLogprob).top_logprobs.filter(isTop)
      : [],
  }));
}
