// A stand-in for an OpenAI-compatible chat-completions server, for tests of the explainer.
//
// It speaks the parts of the protocol the client depends on: POST /v1/chat/completions with a bearer key,
// replies with choices[0].message.content, optional logprobs.content[{token,logprob,top_logprobs}] and
// usage. Replies are scripted: a queue consumed in order, then a function of the request. A scripted
// reply can be an HTTP error (429 with Retry-After, 500), a slow answer or a malformed body. Every request
// is recorded, and the most requests ever in flight at once is counted, so tests can check the
// concurrency limit without timing anything. POST /v1/embeddings answers with `bagOfWordsEmbedding`, a
// deterministic stand-in under which texts sharing words are near each other.
//
// POST /v1/completions speaks the legacy completions protocol as vLLM's OpenAI-compatible server does:
// with `echo` and `logprobs: N` it returns the prompt's own tokens (split by `tokenizePrompt`) with
// `tokens`, `token_logprobs` (null for the first), `top_logprobs` (the N likeliest, null for the first)
// and `text_offset`, then the completion. The distribution at each prompt position comes from the
// `promptDistribution` option, so tests script what a model "believes" at each slot, and the server
// keeps only the top N of it exactly as a real server would.

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedTopLogprob {
  token: string;
  logprob: number;
}

export interface ScriptedLogprob extends ScriptedTopLogprob {
  top_logprobs: ScriptedTopLogprob[];
}

export type LlmReply =
  | {
      content: string;
      logprobs?: ScriptedLogprob[];
      /** Omit to send usage counted as characters/4; null to send no usage at all. */
      usage?: { prompt_tokens: number; completion_tokens: number } | null;
      delayMs?: number;
    }
  | { status: number; body?: string; retryAfter?: string; delayMs?: number }
  | { malformed: string; delayMs?: number };

export interface RecordedRequest {
  authorization: string | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: the request body is whatever the client sent
  body: any;
  /** The last user message: what the prompt asks about. */
  lastUser: string;
}

export interface LlmServerOptions {
  replies?: LlmReply[];
  respond?: (request: RecordedRequest) => LlmReply;
  /** When set, requests without `Authorization: Bearer <key>` get a 401. */
  apiKey?: string;
  /**
   * /v1/completions: the probabilities of the next token before prompt token `index` (index ≥ 1);
   * unlisted tokens get what is left, spread over filler words. Default: the actual token has p = 1.
   */
  promptDistribution?: (tokens: readonly string[], index: number) => Record<string, number> | undefined;
  /** /v1/completions: the generated text after the prompt (default a single "\n"). */
  completionText?: string;
  /** /v1/completions: false sends no `usage` (the client then counts tokens itself). */
  completionUsage?: boolean;
  /** /v1/completions: how long to wait before answering (a latency model for benchmarks). */
  completionDelayMs?: (body: unknown) => number;
}

/** One recorded /v1/completions request. */
export interface RecordedCompletion {
  // biome-ignore lint/suspicious/noExplicitAny: the request body is whatever the client sent
  body: any;
}

export interface LlmServer {
  /** Base URL as users configure it, ending in /v1. */
  url: string;
  requests: RecordedRequest[];
  /** Inputs of each /embeddings request. */
  embeddingRequests: string[][];
  /** Each /completions request. */
  completionRequests: RecordedCompletion[];
  /** The most requests that were in flight at the same moment. */
  maxConcurrent(): number;
  /** Replies still queued. */
  queue: LlmReply[];
  close(): Promise<void>;
}

export async function startLlmServer(options: LlmServerOptions = {}): Promise<LlmServer> {
  const requests: RecordedRequest[] = [];
  const embeddingRequests: string[][] = [];
  const completionRequests: RecordedCompletion[] = [];
  const queue = [...(options.replies ?? [])];
  let inFlight = 0;
  let maxInFlight = 0;

  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => {
      raw += chunk.toString();
    });
    req.on('end', async () => {
      if (req.method === 'POST' && req.url === '/v1/embeddings') {
        const body = JSON.parse(raw);
        const inputs: string[] = Array.isArray(body.input) ? body.input : [body.input];
        embeddingRequests.push(inputs);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            object: 'list',
            model: body.model,
            // reversed on purpose: clients must place items by `index`, not by position
            data: inputs
              .map((text, index) => ({ object: 'embedding', index, embedding: bagOfWordsEmbedding(text) }))
              .reverse(),
            usage: { prompt_tokens: 0, total_tokens: 0 },
          }),
        );
        return;
      }
      if (req.method === 'POST' && req.url === '/v1/completions') {
        if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { message: 'invalid api key' } }));
          return;
        }
        const body = JSON.parse(raw);
        completionRequests.push({ body });
        const delay = options.completionDelayMs?.(body) ?? 0;
        if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
        if (res.destroyed || req.socket.destroyed) return;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(completionReply(body, options, completionRequests.length)));
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
        return;
      }
      if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'invalid api key' } }));
        return;
      }
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        const body = JSON.parse(raw);
        const users = (body.messages ?? []).filter((m: { role: string }) => m.role === 'user');
        const recorded: RecordedRequest = {
          authorization: req.headers.authorization,
          body,
          lastUser: users.at(-1)?.content ?? '',
        };
        requests.push(recorded);
        const reply = queue.shift() ??
          options.respond?.(recorded) ?? { status: 500, body: 'no reply scripted' };
        if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
        if (res.destroyed || req.socket.destroyed) return;
        if ('status' in reply) {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (reply.retryAfter !== undefined) headers['retry-after'] = reply.retryAfter;
          res.writeHead(reply.status, headers);
          res.end(reply.body ?? JSON.stringify({ error: { message: `scripted ${reply.status}` } }));
        } else if ('malformed' in reply) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(reply.malformed);
        } else {
          const usage =
            reply.usage === null
              ? undefined
              : (reply.usage ?? {
                  prompt_tokens: Math.ceil(raw.length / 4),
                  completion_tokens: Math.ceil(reply.content.length / 4),
                });
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              id: `chatcmpl-${requests.length}`,
              object: 'chat.completion',
              model: body.model,
              choices: [
                {
                  index: 0,
                  message: { role: 'assistant', content: reply.content },
                  logprobs: body.logprobs && reply.logprobs ? { content: reply.logprobs } : null,
                  finish_reason: 'stop',
                },
              ],
              ...(usage
                ? { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }
                : {}),
            }),
          );
        }
      } catch (error) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: String(error) } }));
      } finally {
        inFlight -= 1;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    embeddingRequests,
    completionRequests,
    queue,
    maxConcurrent: () => maxInFlight,
    close: () =>
      new Promise((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/**
 * A stand-in tokenizer for prompts: newlines, TABs, "<" and ">" alone, words with their leading space,
 * other punctuation one character at a time. Tokens concatenate back to the prompt exactly.
 */
export function tokenizePrompt(prompt: string): string[] {
  return prompt.match(/\n|\t|<|>| ?[A-Za-z0-9_]+| +|[^\sA-Za-z0-9_<>]/g) ?? [];
}

// Filler alternatives that take the probability a scripted distribution leaves unassigned.
const FILLER = ['the', 'of', 'and', 'a', 'to', 'in', 'is', 'it', 'that', 'was', 'for', 'on', 'as', 'with'];

/** The legacy completions answer: echoed prompt logprobs (top N of the scripted distribution). */
function completionReply(
  // biome-ignore lint/suspicious/noExplicitAny: the request body is whatever the client sent
  body: any,
  options: LlmServerOptions,
  id: number,
): Record<string, unknown> {
  const prompt = String(body.prompt ?? '');
  const top = typeof body.logprobs === 'number' ? body.logprobs : 0;
  const completion = body.max_tokens === 0 ? '' : (options.completionText ?? '\n');
  const promptTokens = body.echo ? tokenizePrompt(prompt) : [];
  const allTokens = [...promptTokens, ...(completion ? [completion] : [])];
  const tokens: string[] = [];
  const tokenLogprobs: (number | null)[] = [];
  const topLogprobs: (Record<string, number> | null)[] = [];
  const offsets: number[] = [];
  let offset = 0;
  allTokens.forEach((token, i) => {
    tokens.push(token);
    offsets.push(offset);
    offset += token.length;
    if (i === 0 && body.echo) {
      tokenLogprobs.push(null);
      topLogprobs.push(null);
      return;
    }
    const scripted = (i < promptTokens.length
      ? options.promptDistribution?.(promptTokens, i)
      : undefined) ?? {
      [token]: 1,
    };
    const full = { ...scripted };
    const left = Math.max(0, 1 - Object.values(scripted).reduce((a, b) => a + b, 0));
    for (const word of FILLER) if (!(word in full)) full[word] = left / FILLER.length;
    const ranked = Object.entries(full)
      .filter(([, p]) => p > 0)
      .sort((a, b) => b[1] - a[1]);
    topLogprobs.push(Object.fromEntries(ranked.slice(0, top).map(([t, p]) => [t, Math.log(p)])));
    tokenLogprobs.push(Math.log(full[token] ?? 1e-9));
  });
  const text = (body.echo ? prompt : '') + completion;
  return {
    id: `cmpl-${id}`,
    object: 'text_completion',
    model: body.model,
    choices: [
      {
        index: 0,
        text,
        logprobs:
          top > 0
            ? { tokens, token_logprobs: tokenLogprobs, top_logprobs: topLogprobs, text_offset: offsets }
            : null,
        finish_reason: 'length',
      },
    ],
    ...(options.completionUsage === false
      ? {}
      : {
          usage: {
            prompt_tokens: tokenizePrompt(prompt).length,
            completion_tokens: completion ? 1 : 0,
            total_tokens: tokenizePrompt(prompt).length + (completion ? 1 : 0),
          },
        }),
  };
}

/**
 * A line-format simulation reply (`token<TAB>N` per token) with log-probabilities laid out as a GPT
 * tokenizer would: the token, a TAB, the digit (with `distribution` as its alternatives), a newline.
 */
export function lineReply(
  tokens: readonly string[],
  distributions: readonly Record<string, number>[],
): LlmReply {
  const logprobs: ScriptedLogprob[] = [];
  const lines: string[] = [];
  tokens.forEach((token, i) => {
    const alternatives = Object.entries(distributions[i])
      .map(([digit, p]) => ({ token: digit, logprob: Math.log(p) }))
      .sort((a, b) => b.logprob - a.logprob);
    const sampled = alternatives[0].token;
    lines.push(`${token}\t${sampled}`);
    const plain = (t: string): ScriptedLogprob => ({
      token: t,
      logprob: 0,
      top_logprobs: [{ token: t, logprob: 0 }],
    });
    logprobs.push(plain(token), plain('\t'), {
      token: sampled,
      logprob: alternatives[0].logprob,
      top_logprobs: alternatives,
    });
    if (i < tokens.length - 1) logprobs.push(plain('\n'));
  });
  return { content: lines.join('\n'), logprobs };
}

export const EMBEDDING_DIMS = 64;

/**
 * Unit-length counts of hashed words (lower-cased, a plural "s" dropped): texts that share words have
 * high cosine similarity, texts that share none are near 0 (up to hash collisions).
 */
export function bagOfWordsEmbedding(text: string): number[] {
  const vector = new Array<number>(EMBEDDING_DIMS).fill(0);
  for (const word of text.toLowerCase().match(/[a-z]+/g) ?? []) {
    const stem = word.length > 3 && word.endsWith('s') ? word.slice(0, -1) : word;
    let hash = 2166136261;
    for (const ch of stem) hash = Math.imul(hash ^ ch.charCodeAt(0), 16777619) >>> 0;
    vector[hash % EMBEDDING_DIMS] += 1;
  }
  const norm = Math.hypot(...vector) || 1;
  return vector.map((v) => v / norm);
}
