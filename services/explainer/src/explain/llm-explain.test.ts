import { afterEach, describe, expect, it } from 'vitest';
import {
  type LlmServer,
  type RecordedRequest,
  startLlmServer,
} from '../../../../tests/support/llm-server.js';
import { LlmClient } from '../llm/client.js';
import { UsageMeter } from '../llm/types.js';
import { JsonSimulator } from '../simulate/json-simulator.js';
import { syntheticUnit } from '../synthetic/units.js';
import { explainUnit } from './explain-unit.js';
import { LlmExplainer } from './llm-explainer.js';

let server: LlmServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/**
 * A scripted model: explanation requests get the candidates in turn; simulation requests get 10 on tokens
 * the explanation names in quotes, else 0 — so the right candidate must win the selection.
 */
function scriptedModel(candidates: string[]) {
  let next = 0;
  return (request: RecordedRequest) => {
    if (request.body.response_format) {
      const explanation = /Explanation: (.*)\n/.exec(request.lastUser)?.[1] ?? '';
      const named = [...explanation.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
      const { sequences } = JSON.parse(request.lastUser.slice(request.lastUser.indexOf('\n') + 1));
      return {
        content: JSON.stringify({
          sequences: sequences.map((s: { tokens: string[] }) => ({
            activations: s.tokens.map((token) => ({
              token,
              activation: named.includes(token.trim()) ? 10 : 0,
            })),
          })),
        }),
      };
    }
    return { content: `Explanation: ${candidates[next++ % candidates.length]}` };
  };
}

describe('LLM explainer', () => {
  it('asks for several candidates, keeps the best by simulation, scores it on held-out records', async () => {
    server = await startLlmServer({
      respond: scriptedModel(['the token "the".', 'the word "river" in text.', 'the token "of".']),
    });
    const client = new LlmClient({ baseUrl: server.url, model: 'scripted', concurrency: 3, timeoutMs: 5000 });
    const unit = syntheticUnit({ seed: 4, firesOn: ' river', records: 12 });
    const meter = new UsageMeter();
    const result = await explainUnit(unit, {
      explainer: new LlmExplainer(client),
      simulator: new JsonSimulator(client),
      candidates: 3,
      seed: 1,
      meter,
    });
    expect(result.explanation).toBe('the word "river" in text.');
    expect(result.candidates).toHaveLength(3);
    expect(result.score.score).toBeGreaterThan(0.9);
    expect(result.score.provenance).toMatchObject({ explainer_model: 'scripted', simulator_method: 'json' });
    // 3 explanation calls, 3 selection simulations, 1 held-out simulation (all sequences in one call each)
    expect(server.requests).toHaveLength(7);
    expect(meter.snapshot().calls).toBe(7);
    // explanation prompts show only the train split (top records 0, 4, 8), in token<TAB>activation form
    const explainPrompt = server.requests.find((r) => !r.body.response_format)?.lastUser ?? '';
    expect(explainPrompt).toContain(`${unit.top[0].tokens[0]}\t`);
    const heldOut = unit.top[2].tokens.join('');
    expect(
      server.requests.filter((r) => !r.body.response_format).every((r) => !r.lastUser.includes(heldOut)),
    ).toBe(true);
  });

  it('records a failure, not a zero, when simulation replies are malformed', async () => {
    server = await startLlmServer({
      respond: (r) => (r.body.response_format ? { content: '{"sequences": "oops"' } : { content: 'x' }),
    });
    const client = new LlmClient({ baseUrl: server.url, model: 'm', concurrency: 2, timeoutMs: 5000 });
    const unit = syntheticUnit({ seed: 4, firesOn: ' river', records: 4 });
    const result = await explainUnit(unit, {
      explainer: new LlmExplainer(client),
      simulator: new JsonSimulator(client),
    });
    expect(result.score.score).toBeNull();
    // 4 top and 4 random records: one of each per OpenAI split, so valid holds 1 top + 1 random
    expect(result.score.reasons.score).toMatch(/2 of 2 simulations failed/);
    expect(result.score.failures[0]).toMatchObject({
      side: 'top',
      reason: expect.stringMatching(/not JSON/),
    });
    expect(result.score.simulated.top).toEqual([null]);
  });
});
