import { afterEach, describe, expect, it } from 'vitest';
import { type LlmServer, startLlmServer } from '../../../tests/support/llm-server.js';
import { configuredSimulator, parseSimulatorMethod, resolveJobLlm, selectModels } from './select-models.js';

let server: LlmServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const config = { llmBaseUrl: 'http://127.0.0.1:1/v1', llmModel: 'm' };

describe('choosing a simulator', () => {
  it('knows every method by name, and "logprobs" as the line simulator', () => {
    for (const name of ['baseline', 'openai-all-at-once', 'openai-token-by-token', 'line-logprobs', 'json'])
      expect(parseSimulatorMethod(name)).toBe(name);
    expect(parseSimulatorMethod('logprobs')).toBe('line-logprobs');
    expect(() => parseSimulatorMethod('magic')).toThrow(
      /unknown simulator "magic": expected one of baseline/,
    );
    expect(() => configuredSimulator({ simulator: 'magic' })).toThrow(/LOUPE_SIMULATOR="magic"/);
    expect(configuredSimulator({ simulator: undefined })).toBeUndefined();
  });

  it('builds the simulator named, each on the endpoint it speaks', async () => {
    server = await startLlmServer({ respond: () => ({ content: '0' }) });
    const llm = { baseUrl: server.url, model: 'm', concurrency: 1, timeoutMs: 5000 };
    expect(selectModels(llm, undefined).simulator.method).toBe('line-logprobs');
    expect(selectModels(undefined, undefined).simulator.method).toBe('baseline');
    const allAtOnce = selectModels(llm, 'openai-all-at-once').simulator;
    await allAtOnce.simulate('x', [['a']]);
    expect(server.completionRequests).toHaveLength(1);
    expect(server.requests).toHaveLength(0);
    await selectModels(llm, 'openai-token-by-token').simulator.simulate('x', [['a', 'b']]);
    expect(server.requests).toHaveLength(2);
    expect(() => selectModels(undefined, 'openai-token-by-token')).toThrow(/needs an LLM server/);
  });

  it("a job stores the request's simulator, else LOUPE_SIMULATOR when an LLM server is set", () => {
    expect(resolveJobLlm({ ...config, simulator: 'openai-all-at-once' }, {}).simulator).toBe(
      'openai-all-at-once',
    );
    expect(
      resolveJobLlm({ ...config, simulator: 'openai-all-at-once' }, { simulator: 'json' }).simulator,
    ).toBe('json');
    expect(resolveJobLlm({ ...config, simulator: 'logprobs' }, {}).simulator).toBe('line-logprobs');
    // without a server the configured default does not apply (the baseline is all there is)
    expect(resolveJobLlm({ llmBaseUrl: undefined, llmModel: 'm', simulator: 'json' }, {})).toEqual({
      baseUrl: null,
      model: null,
      simulator: null,
    });
  });
});
