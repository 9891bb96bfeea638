import { afterEach, describe, expect, it } from 'vitest';
import { type LlmServer, lineReply, startLlmServer } from '../../../../tests/support/llm-server.js';
import { LlmClient } from '../llm/client.js';
import { JsonSimulator, packBatches, readJsonSimulation } from './json-simulator.js';
import { expectedValue, LineLogprobSimulator, readLineSimulation } from './line-logprob-simulator.js';

let server: LlmServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});
const llm = (url: string) =>
  new LlmClient({ baseUrl: url, model: 'sim', concurrency: 2, timeoutMs: 5000, backoffMs: 1 });

describe('line logprob simulator', () => {
  it('expected value over "0"–"10", normalised over the numeric alternatives (hand-computed)', () => {
    // p(0)=0.5, p(5)=0.3, p(10)=0.1, "x"=0.1 ignored: (0·0.5 + 5·0.3 + 10·0.1) / 0.9 = 2.5/0.9
    const alts = [
      { token: '0', logprob: Math.log(0.5) },
      { token: '5', logprob: Math.log(0.3) },
      { token: '10', logprob: Math.log(0.1) },
      { token: 'x', logprob: Math.log(0.1) },
    ];
    expect(expectedValue(alts, (t) => t)).toBeCloseTo(2.5 / 0.9, 12);
    expect(expectedValue([{ token: 'x', logprob: 0 }], (t) => t)).toBeUndefined();
  });

  it('reads each activation slot from scripted top_logprobs through the server', async () => {
    const tokens = ['The', ' cat', ' sat'];
    server = await startLlmServer({
      replies: [lineReply(tokens, [{ '0': 0.9, '1': 0.1 }, { '8': 0.5, '10': 0.25, '6': 0.25 }, { '0': 1 }])],
    });
    const [outcome] = await new LineLogprobSimulator(llm(server.url)).simulate('the word "cat"', [tokens]);
    expect(outcome.ok).toBe(true);
    const values = (outcome as { values: number[] }).values;
    expect(values[0]).toBeCloseTo(0.1, 12);
    expect(values[1]).toBeCloseTo(8 * 0.5 + 10 * 0.25 + 6 * 0.25, 12);
    expect(values[2]).toBe(0);
    expect(server.requests[0].body).toMatchObject({ logprobs: true, temperature: 0 });
    expect(server.requests[0].lastUser).toContain('Explanation: the word "cat"\nTokens:\nThe\n cat\n sat');
  });

  it('handles a TAB merged into the digit token', () => {
    const outcome = readLineSimulation(
      'a\t3',
      [
        { token: 'a', logprob: 0, top_logprobs: [] },
        {
          token: '\t3',
          logprob: Math.log(0.5),
          top_logprobs: [
            { token: '\t3', logprob: Math.log(0.5) },
            { token: '\t1', logprob: Math.log(0.5) },
          ],
        },
      ],
      ['a'],
    );
    expect(outcome).toEqual({ ok: true, values: [2] });
  });

  it('records a failure when the reply does not repeat the tokens or has no logprobs', async () => {
    const bad = lineReply(['The', ' dog'], [{ '0': 1 }, { '0': 1 }]);
    server = await startLlmServer({ replies: [bad, { content: 'The\t0\n cat\t0' }] });
    const sim = new LineLogprobSimulator(llm(server.url));
    const [mismatch] = await sim.simulate('x', [['The', ' cat']]);
    expect(mismatch).toMatchObject({
      ok: false,
      failure: expect.stringMatching(/line 2 .*expected token " cat"/),
    });
    const [noLogprobs] = await sim.simulate('x', [['The', ' cat']]);
    expect(noLogprobs).toMatchObject({ ok: false, failure: expect.stringMatching(/no logprobs/) });
  });
});

describe('JSON simulator', () => {
  it('simulates all sequences of a unit in one call when they fit', async () => {
    const sequences = [
      ['a', ' cat'],
      ['b', '\t'],
    ];
    server = await startLlmServer({
      replies: [
        {
          content: JSON.stringify({
            sequences: [
              {
                activations: [
                  { token: 'a', activation: 0 },
                  { token: ' cat', activation: 9 },
                ],
              },
              {
                activations: [
                  { token: 'b', activation: 1 },
                  { token: '\\t', activation: '2' },
                ],
              },
            ],
          }),
        },
      ],
    });
    const outcomes = await new JsonSimulator(llm(server.url)).simulate('cats', sequences);
    expect(outcomes).toEqual([
      { ok: true, values: [0, 9] },
      { ok: true, values: [1, 2] },
    ]);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0].body).toMatchObject({
      temperature: 0,
      response_format: { type: 'json_object' },
    });
  });

  it('packs sequences into as few calls as the context allows', async () => {
    expect(packBatches([5, 5, 5, 5, 5], 10, 100)).toEqual([[0, 1], [2, 3], [4]]);
    expect(packBatches([50, 1], 10, 100)).toEqual([[0], [1]]);
    expect(packBatches([1, 1, 1], 10, 2)).toEqual([[0, 1], [2]]);
    server = await startLlmServer({ respond: () => ({ content: 'not json' }) });
    const long = Array.from({ length: 200 }, () => 'x');
    await new JsonSimulator(llm(server.url), { contextTokens: 900 + 200 * 16 * 2 }).simulate('x', [
      long,
      long,
      long,
    ]);
    expect(server.requests).toHaveLength(2);
  });

  it('records malformed and token-mismatched replies as failures, not zeros', async () => {
    expect(readJsonSimulation('{"sequences": [', [['a']])).toEqual([
      { ok: false, failure: expect.stringMatching(/not JSON/) },
    ]);
    const outcomes = readJsonSimulation(
      JSON.stringify({
        sequences: [
          { activations: [{ token: 'b', activation: 1 }] },
          { activations: [{ token: 'c', activation: 11 }] },
        ],
      }),
      [['a'], ['c'], ['d']],
    );
    expect(outcomes[0]).toMatchObject({ ok: false, failure: expect.stringMatching(/got "b", expected "a"/) });
    expect(outcomes[1]).toMatchObject({ ok: false, failure: expect.stringMatching(/not a number 0-10/) });
    expect(outcomes[2]).toMatchObject({ ok: false, failure: expect.stringMatching(/no "activations"/) });
    // a single sequence may come back bare
    expect(readJsonSimulation('{"activations":[{"token":"a","activation":3}]}', [['a']])).toEqual([
      { ok: true, values: [3] },
    ]);
  });
});
