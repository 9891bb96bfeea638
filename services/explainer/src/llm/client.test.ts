import { metricsText } from '@loupe/common/metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { type LlmServer, startLlmServer } from '../../../../tests/support/llm-server.js';
import { LlmClient, parseRetryAfter } from './client.js';
import { LlmError } from './errors.js';
import { UsageMeter } from './types.js';

let server: LlmServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const hello = { messages: [{ role: 'user' as const, content: 'hello' }] };
const client = (url: string, extra: Partial<ConstructorParameters<typeof LlmClient>[0]> = {}) =>
  new LlmClient({
    baseUrl: url,
    model: 'test-model',
    concurrency: 4,
    timeoutMs: 5000,
    backoffMs: 1,
    ...extra,
  });

describe('LlmClient', () => {
  it('sends model, bearer key and logprob options; reads content, logprobs and usage', async () => {
    const logprobs = [{ token: 'hi', logprob: -0.1, top_logprobs: [{ token: 'hi', logprob: -0.1 }] }];
    server = await startLlmServer({
      apiKey: 'sk-test',
      replies: [{ content: 'hi', logprobs, usage: { prompt_tokens: 12, completion_tokens: 1 } }],
    });
    const meter = new UsageMeter();
    const result = await client(server.url, { apiKey: 'sk-test' }).chat({ ...hello, topLogprobs: 5 }, meter);
    expect(result).toMatchObject({ content: 'hi', logprobs, usageSource: 'server', attempts: 1 });
    expect(result.usage).toEqual({ promptTokens: 12, completionTokens: 1 });
    expect(server.requests[0].authorization).toBe('Bearer sk-test');
    expect(server.requests[0].body).toMatchObject({ model: 'test-model', logprobs: true, top_logprobs: 5 });
    expect(meter.snapshot()).toEqual({ calls: 1, promptTokens: 12, completionTokens: 1, retries: 0 });
  });

  it('counts tokens itself when the server sends no usage', async () => {
    server = await startLlmServer({ replies: [{ content: 'Hello world', usage: null }] });
    const result = await client(server.url).chat(hello);
    expect(result.usageSource).toBe('estimated');
    // o200k_base: "Hello world" is 2 tokens; prompt "hello" is 1 token + 4 per message + 3 priming.
    expect(result.usage).toEqual({ promptTokens: 8, completionTokens: 2 });
  });

  it('retries 429 (with Retry-After) and 500, then succeeds', async () => {
    server = await startLlmServer({
      replies: [{ status: 429, retryAfter: '0' }, { status: 500 }, { status: 503 }, { content: 'ok' }],
    });
    const meter = new UsageMeter();
    const result = await client(server.url).chat(hello, meter);
    expect(result.content).toBe('ok');
    expect(result.attempts).toBe(4);
    expect(server.requests).toHaveLength(4);
    expect(meter.snapshot().retries).toBe(3);
  });

  it('gives up after maxRetries with a message naming the server and the last error', async () => {
    server = await startLlmServer({ respond: () => ({ status: 500, body: 'overloaded' }) });
    const error = await client(server.url, { maxRetries: 2 })
      .chat(hello)
      .catch((e) => e);
    expect(error).toBeInstanceOf(LlmError);
    expect(error.message).toMatch(/failed after 3 attempts: HTTP 500 overloaded/);
    expect(error.message).toContain(server.url);
    expect(server.requests).toHaveLength(3);
  });

  it('does not retry client errors such as 401', async () => {
    server = await startLlmServer({ apiKey: 'right', replies: [{ content: 'never' }] });
    const error = await client(server.url, { apiKey: 'wrong' })
      .chat(hello)
      .catch((e) => e);
    expect(error).toBeInstanceOf(LlmError);
    expect(error.status).toBe(401);
    expect(server.requests).toHaveLength(0);
  });

  it('times out a slow answer and retries it', async () => {
    server = await startLlmServer({ replies: [{ content: 'late', delayMs: 3000 }, { content: 'on time' }] });
    const result = await client(server.url, { timeoutMs: 200 }).chat(hello);
    expect(result).toMatchObject({ content: 'on time', attempts: 2 });
    const error = await client(server.url, { timeoutMs: 100, maxRetries: 0 })
      .chat(hello)
      .catch((e) => e);
    expect(server.queue).toHaveLength(0);
    // nothing left scripted: the server answers 500, so this is the HTTP error, not a timeout
    expect(error.message).toMatch(/HTTP 500/);
  });

  it('reports a timeout clearly when every attempt is slow', async () => {
    server = await startLlmServer({ respond: () => ({ content: 'late', delayMs: 2000 }) });
    const error = await client(server.url, { timeoutMs: 100, maxRetries: 1 })
      .chat(hello)
      .catch((e) => e);
    expect(error.message).toMatch(/failed after 2 attempts: no reply within 100 ms/);
  });

  it('rejects a malformed reply with a clear error', async () => {
    server = await startLlmServer({
      replies: [{ malformed: '{"choices":' }, { malformed: '{"choices":[]}' }],
    });
    await expect(client(server.url).chat(hello)).rejects.toThrow(/reply is not JSON/);
    await expect(client(server.url).chat(hello)).rejects.toThrow(/without choices\[0\]\.message\.content/);
  });

  it('never has more requests in flight than the concurrency limit', async () => {
    server = await startLlmServer({ respond: () => ({ content: 'ok', delayMs: 50 }) });
    const limited = client(server.url, { concurrency: 2 });
    await Promise.all(Array.from({ length: 8 }, () => limited.chat(hello)));
    expect(server.requests).toHaveLength(8);
    expect(server.maxConcurrent()).toBe(2);
  });

  it("adds each call's cost at the configured prices to loupe_llm_cost_usd_total{model}", async () => {
    server = await startLlmServer({
      replies: [
        { content: 'a', usage: { prompt_tokens: 1000, completion_tokens: 200 } },
        { content: 'b', usage: { prompt_tokens: 3000, completion_tokens: 0 } },
      ],
    });
    const priced = client(server.url, {
      model: 'cost-test-model',
      prices: { promptUsdPerMillion: 2.5, completionUsdPerMillion: 10 },
    });
    await priced.chat(hello);
    await priced.chat(hello);
    const { body } = await metricsText();
    const line = body
      .split('\n')
      .find((l) => l.startsWith('loupe_llm_cost_usd_total{model="cost-test-model"}'));
    // by hand: (1000 + 3000) × $2.50/M + 200 × $10/M = 0.01 + 0.002
    expect(Number(line?.split(' ').at(-1))).toBeCloseTo(0.012, 12);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
    ).toBe(10_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
