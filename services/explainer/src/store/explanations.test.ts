import { withTestDatabase } from '@loupe/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bagOfWordsEmbedding, type LlmServer, startLlmServer } from '../../../../tests/support/llm-server.js';
import { EmbeddingsClient } from '../llm/embeddings.js';
import {
  listExplanations,
  type ScoredExplanation,
  saveExplanation,
  searchExplanations,
  semanticSearchExplanations,
} from './explanations.js';
import { EXPLAINER_MIGRATIONS_DIR, EXPLAINER_SCHEMA } from './migrations.js';

// Explanation search on the embedded Postgres: full text, and pgvector nearest neighbours.
const db = withTestDatabase(
  { beforeAll, afterAll },
  { schema: EXPLAINER_SCHEMA, migrations: EXPLAINER_MIGRATIONS_DIR },
);
let server: LlmServer;
let embeddings: EmbeddingsClient;

beforeAll(async () => {
  server = await startLlmServer();
  embeddings = new EmbeddingsClient({ baseUrl: server.url, model: 'embed', concurrency: 2, timeoutMs: 5000 });
});
afterAll(async () => {
  await server?.close();
});

const row = (unit: string, explanation: string, score: number): ScoredExplanation => ({
  unit,
  explanation,
  method: 'simulation',
  score,
  topOnly: null,
  randomOnly: null,
  ci: [score - 0.1, score + 0.1],
  reason: null,
  explainerModel: 'baseline-statistical',
  simulatorModel: 'baseline-statistical',
  provenance: { seed: 0 },
  usage: { calls: 0, promptTokens: 0, completionTokens: 0, retries: 0 },
});

describe('explanation search', () => {
  const texts = [
    'the names of rivers and lakes',
    'closing quotation marks in dialogue',
    'units of time after numbers',
  ];

  it('embeds through the server, in input order even when the reply is not', async () => {
    const vectors = await embeddings.embed(texts);
    expect(vectors).toEqual(texts.map(bagOfWordsEmbedding));
    for (const [i, text] of texts.entries())
      await saveExplanation(db.sql, row(`m/blocks.0.mlp.hook_post/${i}`, text, 0.5 + i / 10), vectors[i]);
    await saveExplanation(db.sql, row('m/blocks.1.mlp.hook_post/0', 'rivers in spring', 0.2)); // no embedding
  });

  it('full-text search stems words and ranks by relevance, then score', async () => {
    const hits = await searchExplanations(db.sql, { query: 'river' });
    expect(hits.map((h) => h.unit)).toEqual(['m/blocks.0.mlp.hook_post/0', 'm/blocks.1.mlp.hook_post/0']);
    expect(await searchExplanations(db.sql, { query: 'river', unitPrefix: 'm/blocks.1.' })).toHaveLength(1);
    // LIKE wildcards in the prefix are literal
    expect(await searchExplanations(db.sql, { query: 'river', unitPrefix: 'm/blocks._' })).toHaveLength(0);
  });

  it('semantic search returns the nearest embeddings first, with cosine similarity as relevance', async () => {
    const query = 'lakes and rivers';
    const [embedding] = await embeddings.embed([query]);
    const hits = await semanticSearchExplanations(db.sql, embedding, { limit: 2 });
    expect(hits).toHaveLength(2);
    expect(hits[0].explanation).toBe(texts[0]);
    // independent reference: cosine of the two unit vectors
    const reference = bagOfWordsEmbedding(texts[0]).reduce((s, v, i) => s + v * embedding[i], 0);
    expect(hits[0].relevance).toBeCloseTo(reference, 5);
    expect(hits[0].relevance).toBeGreaterThan(hits[1].relevance);
    // embeddings of another dimension (another model) are not compared
    expect(await semanticSearchExplanations(db.sql, [1, 0, 0], {})).toEqual([]);
  });
});

describe('listing explanations of units', () => {
  it("lists a page of units best score first, and each unit's best under a prefix", async () => {
    await saveExplanation(db.sql, row('l/blocks.0.mlp.hook_post/0', 'low', 0.1));
    await saveExplanation(db.sql, row('l/blocks.0.mlp.hook_post/0', 'high', 0.9));
    await saveExplanation(db.sql, {
      ...row('l/blocks.0.mlp.hook_post/0', 'none', 0),
      score: null,
      reason: 'constant',
    });
    await saveExplanation(db.sql, row('l/blocks.0.mlp.hook_post/1', 'other', 0.4));
    const listed = await listExplanations(db.sql, { units: ['l/blocks.0.mlp.hook_post/0', 'l/x/9'] });
    expect(listed.map((e) => [e.explanation, e.score])).toEqual([
      ['high', 0.9],
      ['low', 0.1],
      ['none', null],
    ]);
    expect(listed[0].ci).toEqual([0.9 - 0.1, 0.9 + 0.1]);
    expect(listed[2].reason).toBe('constant');
    const best = await listExplanations(db.sql, { unitPrefix: 'l/blocks.0.', bestOnly: true });
    expect(best.map((e) => [e.unit, e.explanation])).toEqual([
      ['l/blocks.0.mlp.hook_post/0', 'high'],
      ['l/blocks.0.mlp.hook_post/1', 'other'],
    ]);
    await expect(listExplanations(db.sql, { unitPrefix: 'l/' })).rejects.toThrow(/best_only/);
    await expect(listExplanations(db.sql, {})).rejects.toThrow(/either units/);
  });
});
