import type { LoupeConfig } from '@loupe/common';
import { LlmError } from './errors.js';
import { type HttpClientOptions, type HttpRequestError, RetryingJsonPost, snippet } from './http-json.js';

export interface EmbeddingsOptions extends HttpClientOptions {
  /** OpenAI-compatible server; the client appends /embeddings */
  baseUrl: string;
  model: string;
}

/** Client for an OpenAI-compatible `/embeddings` endpoint (OpenAI, vLLM, Ollama, llama.cpp, TEI). */
export class EmbeddingsClient {
  private readonly http: RetryingJsonPost;

  constructor(readonly options: EmbeddingsOptions) {
    this.http = new RetryingJsonPost(`${options.baseUrl.replace(/\/+$/, '')}/embeddings`, options);
  }

  get model(): string {
    return this.options.model;
  }

  async embed(texts: readonly string[]): Promise<number[][]> {
    let reply: unknown;
    try {
      ({ reply } = await this.http.post({ model: this.options.model, input: texts }));
    } catch (error) {
      const e = error as HttpRequestError;
      throw new LlmError(`embeddings server ${this.http.url} (model ${this.model}) ${e.message}`, e.status);
    }
    const data = (reply as { data?: { index?: number; embedding?: unknown }[] })?.data;
    if (!Array.isArray(data) || data.length !== texts.length)
      throw new LlmError(
        `embeddings server ${this.http.url} sent ${Array.isArray(data) ? data.length : 'no'} embeddings for ${texts.length} texts: ${snippet(JSON.stringify(reply))}`,
      );
    // Servers may return the items out of order; `index` says which input each belongs to.
    const out: number[][] = new Array(texts.length);
    data.forEach((item, i) => {
      const vector = item.embedding;
      if (!Array.isArray(vector) || vector.length === 0 || !vector.every((v) => typeof v === 'number'))
        throw new LlmError(
          `embeddings server ${this.http.url} sent an embedding that is not a list of numbers`,
        );
      out[item.index ?? i] = vector as number[];
    });
    return out;
  }
}

/** The configured embeddings server, or undefined when semantic search is off. */
export function embeddingsFromConfig(
  config: Pick<
    LoupeConfig,
    'embeddingsBaseUrl' | 'embeddingsModel' | 'llmApiKey' | 'llmConcurrency' | 'llmTimeoutMs'
  >,
): EmbeddingsClient | undefined {
  if (!config.embeddingsBaseUrl) return undefined;
  return new EmbeddingsClient({
    baseUrl: config.embeddingsBaseUrl,
    model: config.embeddingsModel,
    apiKey: config.llmApiKey,
    concurrency: config.llmConcurrency,
    timeoutMs: config.llmTimeoutMs,
  });
}
