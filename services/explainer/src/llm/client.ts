import { setTimeout as sleep } from 'node:timers/promises';
import { countPromptTokens, countTextTokens } from './count-tokens.js';
import { LlmError } from './errors.js';
import { ConcurrencyLimiter } from './limiter.js';
import type {
  ChatModel,
  ChatRequest,
  ChatResult,
  TokenLogprob,
  TokenUsage,
  TopLogprob,
  UsageMeter,
} from './types.js';

export interface LlmClientOptions {
  /** e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1 (the client appends /chat/completions) */
  baseUrl: string;
  apiKey?: string;
  model: string;
  concurrency: number;
  timeoutMs: number;
  /** Attempts after the first, on 429, 5xx, timeouts and connection errors. */
  maxRetries?: number;
  /** First backoff delay; doubles each retry, with full jitter, capped at maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Seeded jitter source for tests; Math.random otherwise (jitter needs no reproducibility). */
  random?: () => number;
}

const DEFAULT_RETRIES = 5;
const DEFAULT_BACKOFF_MS = 500;
const DEFAULT_MAX_BACKOFF_MS = 30_000;
// A Retry-After longer than this is the server telling us to stop, not to wait.
const MAX_RETRY_AFTER_MS = 120_000;

/** Why one attempt failed, and whether another attempt could help. */
interface AttemptFailure {
  retryable: boolean;
  message: string;
  status?: number;
  retryAfterMs?: number;
}

/**
 * Client for any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp server).
 * Retries 429 (honouring Retry-After), 5xx, timeouts and dropped connections with exponential backoff
 * and jitter; bounds requests in flight; reports token usage per call.
 */
export class LlmClient implements ChatModel {
  readonly model: string;
  private readonly limiter: ConcurrencyLimiter;
  private readonly url: string;

  constructor(private readonly options: LlmClientOptions) {
    this.model = options.model;
    this.url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    this.limiter = new ConcurrencyLimiter(Math.max(1, options.concurrency));
  }

  async chat(request: ChatRequest, meter?: UsageMeter): Promise<ChatResult> {
    const maxRetries = this.options.maxRetries ?? DEFAULT_RETRIES;
    const body = JSON.stringify(this.requestBody(request));
    let last: AttemptFailure | undefined;
    for (let attempt = 1; attempt <= maxRetries + 1; attempt++) {
      // The slot is held only while a request is in flight, not while backing off.
      const outcome = await this.limiter.run(() => this.attempt(body));
      if ('reply' in outcome) {
        const result = await this.readReply(outcome.reply, request, attempt);
        meter?.record(result);
        return result;
      }
      last = outcome.failure;
      if (!last.retryable || attempt > maxRetries) break;
      await sleep(this.delayMs(attempt, last.retryAfterMs));
    }
    const tries = last?.retryable ? ` after ${maxRetries + 1} attempts` : '';
    throw new LlmError(
      `LLM server ${this.url} (model ${this.model}) failed${tries}: ${last?.message}`,
      last?.status,
    );
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

  private async attempt(body: string): Promise<{ reply: unknown } | { failure: AttemptFailure }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.options.timeoutMs);
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
      const response = await fetch(this.url, { method: 'POST', headers, body, signal: controller.signal });
      const text = await response.text();
      if (response.status === 429 || response.status >= 500) {
        return {
          failure: {
            retryable: true,
            status: response.status,
            message: `HTTP ${response.status} ${snippet(text)}`,
            retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
          },
        };
      }
      if (!response.ok)
        return {
          failure: {
            retryable: false,
            status: response.status,
            message: `HTTP ${response.status} ${snippet(text)}`,
          },
        };
      try {
        return { reply: JSON.parse(text) };
      } catch {
        return { failure: { retryable: false, message: `reply is not JSON: ${snippet(text)}` } };
      }
    } catch (error) {
      if (controller.signal.aborted)
        return { failure: { retryable: true, message: `no reply within ${this.options.timeoutMs} ms` } };
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      return { failure: { retryable: true, message: `connection failed (${cause})` } };
    } finally {
      clearTimeout(timer);
    }
  }

  private async readReply(reply: unknown, request: ChatRequest, attempts: number): Promise<ChatResult> {
    const choice = (reply as { choices?: unknown[] })?.choices?.[0] as
      | { message?: { content?: unknown }; logprobs?: { content?: unknown } | null }
      | undefined;
    const content = choice?.message?.content;
    if (typeof content !== 'string')
      throw new LlmError(
        `LLM server ${this.url} sent a reply without choices[0].message.content: ${snippet(JSON.stringify(reply))}`,
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

  private delayMs(attempt: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, MAX_RETRY_AFTER_MS);
    const cap = Math.min(
      this.options.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS,
      (this.options.backoffMs ?? DEFAULT_BACKOFF_MS) * 2 ** (attempt - 1),
    );
    // Full jitter (AWS architecture blog): clients that failed together do not retry together.
    return Math.round(cap * (this.options.random ?? Math.random)());
  }
}

/** Retry-After is either delta-seconds or an HTTP date. */
export function parseRetryAfter(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
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

function snippet(text: string): string {
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
