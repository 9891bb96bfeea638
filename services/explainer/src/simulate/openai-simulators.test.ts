import { afterEach, describe, expect, it } from 'vitest';
import { type LlmServer, startLlmServer } from '../../../../tests/support/llm-server.js';
import { LlmClient } from '../llm/client.js';
import { CompletionsClient } from '../llm/completions.js';
import {
  allAtOnceSimulationPrompt,
  singleTokenSimulationMessages,
} from '../prompts/openai-simulate-prompt.js';
import { OpenAiAllAtOnceSimulator, readEchoedSlots } from './openai-all-at-once-simulator.js';
import { openAiExpectedValue } from './openai-expected-value.js';
import { OpenAiTokenByTokenSimulator } from './openai-token-by-token-simulator.js';

let server: LlmServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});
const options = (url: string) => ({
  baseUrl: url,
  model: 'sim',
  concurrency: 4,
  timeoutMs: 5000,
  backoffMs: 1,
});
const ln = Math.log;

describe("OpenAI's expected value", () => {
  it('renormalises over exactly "0"…"10" and gives 0 when none is among the alternatives', () => {
    // (0·0.5 + 3·0.2 + 10·0.1) / 0.8 = 2; " 9" and "x" are not activation tokens
    expect(
      openAiExpectedValue({ '0': ln(0.5), '3': ln(0.2), '10': ln(0.1), ' 9': ln(0.1), x: ln(0.1) }),
    ).toBeCloseTo(2, 12);
    expect(openAiExpectedValue({ unknown: ln(0.9), the: ln(0.1) })).toBe(0);
    expect(openAiExpectedValue(null)).toBe(0);
  });
});

describe('OpenAI all-at-once simulator (completions with echo)', () => {
  const tokens = ['The', ' cat', ' sat', ' down'];
  // Per slot of the sequence being simulated, what the scripted model believes at its "unknown".
  const beliefs: Record<string, number>[] = [
    { '0': 0.5, '3': 0.2, '10': 0.1 },
    // no digit at all: OpenAI's rule makes this slot 0
    { unknown: 0.6, ' the': 0.3 },
    // a digit, but ranked 17th: the server's top 15 leave it out, so this slot is 0 too
    { ...Object.fromEntries(Array.from({ length: 16 }, (_, k) => [`w${k}`, 0.05])), '7': 0.01 },
    { '7': 0.3, '8': 0.3, ' 9': 0.2 },
  ];

  it('reads the distribution at each "unknown" slot of the last block from echoed prompt logprobs', async () => {
    server = await startLlmServer({
      promptDistribution: (promptTokens, index) => {
        if (promptTokens[index] !== 'unknown' || promptTokens[index - 1] !== '\t') return undefined;
        const lastStart = promptTokens.lastIndexOf('start');
        // few-shot "unknown" slots lie before the last <start>: a parser that read them would see 9s
        if (index < lastStart) return { '9': 1 };
        const slot = promptTokens.slice(lastStart, index).filter((t) => t === 'unknown').length;
        return beliefs[slot];
      },
    });
    const [outcome] = await new OpenAiAllAtOnceSimulator(new CompletionsClient(options(server.url))).simulate(
      'cats',
      [tokens],
    );
    // By hand: slot 1 = (0·0.5 + 3·0.2 + 10·0.1)/0.8; slots 2 and 3 have no digit in the top 15;
    // slot 4 = (7·0.3 + 8·0.3)/0.6 (" 9" is not an activation token).
    const expected = [(3 * 0.2 + 10 * 0.1) / 0.8, 0, 0, (7 * 0.3 + 8 * 0.3) / 0.6];
    expect(outcome.ok).toBe(true);
    const values = (outcome as { values: number[] }).values;
    expect(values).toHaveLength(4);
    for (const [i, v] of values.entries()) expect(v).toBeCloseTo(expected[i], 12);
    const body = server.completionRequests[0].body;
    expect(body).toMatchObject({ echo: true, logprobs: 15, temperature: 0, max_tokens: 1, model: 'sim' });
    expect(body.prompt).toBe(allAtOnceSimulationPrompt('cats', tokens));
    expect(body.prompt).toContain(
      'Explanation of neuron 4 behavior: the main thing this neuron does is find cats\nActivations: \n<start>\nThe\tunknown\n cat\tunknown\n sat\tunknown\n down\tunknown\n<end>\n',
    );
  });

  it('fails a sequence only when the server gives no prompt logprobs or the slots do not line up', async () => {
    server = await startLlmServer();
    const noLogprobs = new CompletionsClient(options(server.url));
    const plain = {
      model: 'x',
      complete: (r: Parameters<typeof noLogprobs.complete>[0]) =>
        noLogprobs.complete({ ...r, logprobs: undefined }),
    };
    const [outcome] = await new OpenAiAllAtOnceSimulator(plain).simulate('x', [['a']]);
    expect(outcome).toMatchObject({ ok: false, failure: expect.stringMatching(/no prompt logprobs/) });
    // a tokenizer that merges TAB and "unknown" leaves no slot to read
    const text = 'p\n<start>\na\tunknown\n<end>\n';
    const merged = readEchoedSlots(
      text,
      {
        tokens: ['p', '\n', '<start>', '\n', 'a', '\tunknown', '\n<end>\n'],
        topLogprobs: [null, {}, {}, {}, {}, {}, {}],
        textOffset: [0, 1, 2, 9, 10, 11, 19],
      },
      text.length,
      1,
    );
    expect(merged).toMatchObject({ ok: false, failure: expect.stringMatching(/found 0 "unknown" slots/) });
  });
});

describe('OpenAI token-by-token simulator (chat completions)', () => {
  const tokens = ['The', ' cat', ' sat'];
  const beliefs: Record<string, Record<string, number>> = {
    The: { '0': 0.9, '1': 0.1 },
    ' cat': { '8': 0.5, '10': 0.25, '6': 0.25 },
    // no digit among the alternatives: 0 by OpenAI's rule, not a failed sequence
    ' sat': { Sure: 0.7, I: 0.3 },
  };

  it('asks once per token with the text up to it, and reads the first reply token', async () => {
    server = await startLlmServer({
      respond: (request) => {
        const last =
          request.lastUser.match(/Last token in the text:\n([\s\S]*?)\n\nLast token activation/)?.[1] ?? '';
        const top = Object.entries(beliefs[last])
          .map(([token, p]) => ({ token, logprob: ln(p) }))
          .sort((a, b) => b.logprob - a.logprob);
        return { content: top[0].token, logprobs: [{ ...top[0], top_logprobs: top }] };
      },
    });
    const [outcome] = await new OpenAiTokenByTokenSimulator(new LlmClient(options(server.url))).simulate(
      'felines',
      [tokens],
    );
    expect(outcome.ok).toBe(true);
    const values = (outcome as { values: number[] }).values;
    // by hand: 1·0.1; 8·0.5 + 10·0.25 + 6·0.25; no digits → 0
    expect(values[0]).toBeCloseTo(0.1, 12);
    expect(values[1]).toBeCloseTo(8, 12);
    expect(values[2]).toBe(0);
    expect(server.requests).toHaveLength(3);
    for (const request of server.requests)
      expect(request.body).toMatchObject({ max_tokens: 1, logprobs: true, top_logprobs: 15, temperature: 0 });
    // causal: the prompt for the first token shows no later token
    const first = server.requests.find((r) => r.lastUser.includes('Last token in the text:\nThe\n'));
    expect(first?.lastUser).toContain('Text:\nThe\n');
    expect(first?.lastUser).not.toMatch(/ cat| sat/);
    expect(server.requests[0].body.messages).toEqual(
      singleTokenSimulationMessages(
        'felines',
        tokens,
        tokens.indexOf(server.requests[0].lastUser.match(/Last token in the text:\n(.*)\n/)?.[1] ?? ''),
      ),
    );
  });

  it('fails the sequence when the server returns no logprobs at all', async () => {
    server = await startLlmServer({ respond: () => ({ content: '3' }) });
    const [outcome] = await new OpenAiTokenByTokenSimulator(new LlmClient(options(server.url))).simulate(
      'x',
      [['a']],
    );
    expect(outcome).toMatchObject({ ok: false, failure: expect.stringMatching(/no logprobs/) });
  });
});
