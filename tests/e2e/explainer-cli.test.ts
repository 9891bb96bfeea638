import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pearson, syntheticUnit } from '@loupe/explainer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseEnv, startTestDatabase, type TestDatabase } from '../support/database.js';
import { type LlmServer, lineReply, type RecordedRequest, startLlmServer } from '../support/llm-server.js';
import { runCli } from '../support/process.js';

// `loupe score` and `loupe explain` as users run them: a real process, the records in a file, and for
// the LLM paths a local server speaking the chat-completions protocol.
let scratch: string;
let recordsFile: string;
let server: LlmServer;
const unit = syntheticUnit({ seed: 11, firesOn: ' river', records: 8, length: 16 });
// No LLM from the environment unless a test gives one.
const noLlm = { LOUPE_LLM_BASE_URL: '', LOUPE_LOG_LEVEL: 'silent' };

/** A model that believes the explanation: high where a quoted word appears, low elsewhere. */
function believer(request: RecordedRequest) {
  const explanation = /Explanation: (.*)\n/.exec(request.lastUser)?.[1] ?? '';
  const named = new Set([...explanation.matchAll(/"([^"]*)"/g)].map((m) => m[1]));
  if (request.body.response_format) {
    const { sequences } = JSON.parse(request.lastUser.slice(request.lastUser.indexOf('\n') + 1));
    return {
      content: JSON.stringify({
        sequences: sequences.map((s: { tokens: string[] }) => ({
          activations: s.tokens.map((token) => ({ token, activation: named.has(token.trim()) ? 10 : 0 })),
        })),
      }),
    };
  }
  if (request.body.logprobs) {
    const tokens = request.lastUser.split('\nTokens:\n')[1].split('\n');
    return lineReply(
      tokens,
      tokens.map((t) => (named.has(t.trim()) ? { '10': 0.6, '8': 0.4 } : { '0': 0.9, '1': 0.1 })),
    );
  }
  return { content: 'Explanation: the word "river".' };
}

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-explainer-cli-'));
  recordsFile = path.join(scratch, 'records.json');
  await fs.writeFile(recordsFile, JSON.stringify(unit));
  server = await startLlmServer({ respond: believer });
});
afterAll(async () => {
  await server?.close();
  await fs.rm(scratch, { recursive: true, force: true });
});

describe('loupe score', () => {
  it('scores with the built-in baseline when no LLM is configured, printing the contract fields', async () => {
    const args = ['score', '--records', recordsFile, '--explanation', 'the token "river".', '--json'];
    const { code, stdout, stderr } = await runCli(args, noLlm);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(Object.keys(out)).toEqual(
      expect.arrayContaining(['score', 'top_only', 'random_only', 'ci', 'simulated']),
    );
    expect(out.simulated.top).toHaveLength(8);
    expect(out.simulated.random).toHaveLength(8);
    expect(out.provenance.simulator_model).toBe('baseline-statistical');
    // Independent check: recompute the joined correlation from the printed simulation.
    const actual = [...unit.top, ...unit.random].flatMap((r) => r.activations);
    const simulated = [...out.simulated.top, ...out.simulated.random].flat();
    expect(out.score).toBeCloseTo(pearson(actual, simulated).value as number, 12);
    expect(out.score).toBeGreaterThan(0.9);
    expect(out.ci[0]).toBeLessThanOrEqual(out.score);
    expect(out.ci[1]).toBeGreaterThanOrEqual(out.score);
    // same seed, same interval
    expect(JSON.parse((await runCli(args, noLlm)).stdout).ci).toEqual(out.ci);
  });

  it('scores through an LLM server with the json and line-logprobs simulators', async () => {
    // "logprobs" is the line simulator's earlier name, still accepted
    for (const simulator of ['json', 'line-logprobs', 'logprobs']) {
      const before = server.requests.length;
      const { code, stdout, stderr } = await runCli(
        [
          'score',
          '--records',
          recordsFile,
          '--explanation',
          'the word "river".',
          '--simulator',
          simulator,
          '--llm-base-url',
          server.url,
          '--llm-model',
          'local-model',
          '--json',
        ],
        noLlm,
      );
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const out = JSON.parse(stdout);
      expect(out.provenance).toMatchObject({
        simulator_model: 'local-model',
        simulator_method: simulator === 'logprobs' ? 'line-logprobs' : simulator,
        record_split: null,
      });
      expect(out.failures).toEqual([]);
      expect(out.score).toBeGreaterThan(0.9);
      expect(server.requests[before].body.model).toBe('local-model');
      // json: all 16 sequences in one call; line-logprobs: one call per sequence
      expect(server.requests.length - before).toBe(simulator === 'json' ? 1 : 16);
    }
  });

  it('names what is wrong with bad input and exits 2', async () => {
    const bad = path.join(scratch, 'bad.json');
    await fs.writeFile(bad, JSON.stringify({ top: [{ tokens: ['a', 'b'], activations: [1] }] }));
    const mismatch = await runCli(['score', '--records', bad, '--explanation', 'x', '--json'], noLlm);
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toMatch(/top\[0\]: 2 tokens but 1 activations/);
    const simulator = await runCli(
      ['score', '--records', recordsFile, '--explanation', 'x', '--simulator', 'json'],
      noLlm,
    );
    expect(simulator.code).toBe(2);
    expect(simulator.stderr).toMatch(/json simulator needs an LLM server/);
    const unknown = await runCli(
      ['score', '--records', recordsFile, '--explanation', 'x', '--simulator', 'magic'],
      noLlm,
    );
    expect(unknown.stderr).toMatch(
      /unknown simulator "magic": expected one of baseline, openai-all-at-once, openai-token-by-token, line-logprobs, json/,
    );
    const missing = await runCli(
      ['score', '--records', path.join(scratch, 'nope.json'), '--explanation', 'x'],
      noLlm,
    );
    expect(missing.stderr).toMatch(/cannot read --records/);
  });
});

describe('loupe explain', () => {
  it('explains with the labelled baseline, and with an LLM', async () => {
    const baseline = await runCli(['explain', '--records', recordsFile, '--json'], noLlm);
    expect(baseline.code).toBe(0);
    const out = JSON.parse(baseline.stdout);
    expect(out).toMatchObject({ explanation: 'the token "river".', explainer_model: 'baseline-statistical' });
    // 8 top and 8 random records: OpenAI's split deals 2 per split, and scores the valid ones
    expect(out.score.provenance.record_ids.top).toEqual(['top:2', 'top:6']);
    expect(out.score.provenance.record_split).toMatchObject({ name: 'openai', top_per_split: 2 });
    const halves = JSON.parse(
      (await runCli(['explain', '--records', recordsFile, '--record-split', 'halves', '--json'], noLlm))
        .stdout,
    );
    expect(halves.score.provenance.record_ids.top).toEqual(['top:1', 'top:3', 'top:5', 'top:7']);
    const badSplit = await runCli(['explain', '--records', recordsFile, '--record-split', 'thirds'], noLlm);
    expect(badSplit.code).toBe(2);
    expect(badSplit.stderr).toMatch(/unknown record split "thirds": expected one of openai, halves/);

    const llm = await runCli(
      ['explain', '--records', recordsFile, '--llm-base-url', server.url, '--simulator', 'json', '--json'],
      noLlm,
    );
    expect(llm.stderr).toBe('');
    const explained = JSON.parse(llm.stdout);
    expect(explained.explanation).toBe('the word "river".');
    expect(explained.score.score).toBeGreaterThan(0.9);
    expect(explained.score.usage.calls).toBe(2);
  });
});

describe('loupe jobs score / export', () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let recordsDir: string;

  beforeAll(async () => {
    db = await startTestDatabase();
    env = { ...noLlm, ...databaseEnv(db), LOUPE_DATA_DIR: path.join(scratch, 'data') };
    recordsDir = path.join(scratch, 'records');
    const hookDir = path.join(recordsDir, 'tiny', 'blocks.0.mlp.hook_post');
    await fs.mkdir(hookDir, { recursive: true });
    // units 0-2 have records (0 and 2 fire on " river", 1 is noise); unit 3 has none
    for (const i of [0, 1, 2]) {
      const records = syntheticUnit({ seed: i, firesOn: i % 2 === 0 ? ' river' : undefined, records: 8 });
      await fs.writeFile(path.join(hookDir, `${i}.json`), JSON.stringify(records));
    }
  });
  afterAll(async () => {
    await db?.stop();
  });

  it('scores a range of units with progress, exports JSONL, and resuming scores nothing twice', async () => {
    const out = path.join(scratch, 'results.jsonl');
    const run = await runCli(
      [
        'jobs',
        'score',
        '--units',
        'tiny/blocks.0.mlp.hook_post/0-3',
        '--records-dir',
        recordsDir,
        '--max-attempts',
        '2',
        '--out',
        out,
      ],
      env,
    );
    expect(run.stderr).not.toMatch(/internal error/);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/starting scoring job .*: 4 units, simulation, baseline-statistical/);
    expect(run.stderr).toMatch(/scoring .*: 100%/);
    expect(run.stderr).toMatch(/scoring job \S+ done: 3 done, 1 failed, 0 tokens, unpriced/);
    const job = JSON.parse(run.stdout);
    expect(job).toMatchObject({ status: 'done', unitsTotal: 4, unitsDone: 3, unitsFailed: 1, costUsd: 0 });
    const lines = (await fs.readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.unit, l.status])).toEqual([
      ['tiny/blocks.0.mlp.hook_post/0', 'done'],
      ['tiny/blocks.0.mlp.hook_post/1', 'done'],
      ['tiny/blocks.0.mlp.hook_post/2', 'done'],
      ['tiny/blocks.0.mlp.hook_post/3', 'failed'],
    ]);
    expect(lines[0]).toMatchObject({
      explanation: 'the token "river".',
      simulator_model: 'baseline-statistical',
    });
    expect(lines[0].score).toBeGreaterThan(0.9);
    expect(lines[3]).toMatchObject({
      attempts: 2,
      error: expect.stringMatching(/no records for .*\/3: expected/),
    });

    // prices configured now do not reprice a job created unpriced
    const resumed = await runCli(['jobs', 'score', '--job', job.id, '--records-dir', recordsDir], {
      ...env,
      LOUPE_LLM_PRICE_PROMPT: '2.5',
    });
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/0 tokens, unpriced/);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ status: 'done', unitsDone: 3, unitsFailed: 1 });
    const exported = await runCli(['jobs', 'export', job.id], env);
    expect(exported.code).toBe(0);
    expect(
      exported.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(lines);

    const bad = await runCli(['jobs', 'score', '--units', 'tiny/blocks.0.mlp.hook_post/x'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/"x" is not an index or a range/);
  });
});
