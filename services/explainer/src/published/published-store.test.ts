import { withTestDatabase } from '@loupe/common/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UnitRecords } from '../records/records.js';
import { listExplanations } from '../store/explanations.js';
import { EXPLAINER_MIGRATIONS_DIR, EXPLAINER_SCHEMA } from '../store/migrations.js';
import type { PublishedNeuronRecord } from './openai-format.js';
import { PublishedRecordSource } from './published-record-source.js';
import { completeUnits, getPublishedNeuron, savePublishedNeuron } from './published-store.js';

// The store of imported neurons on the embedded Postgres: partial neurons completed by a later run,
// and scoring records taken from it before any other source.
const db = withTestDatabase(
  { beforeAll, afterAll },
  { schema: EXPLAINER_SCHEMA, migrations: EXPLAINER_MIGRATIONS_DIR },
);

const UNIT = 'gpt2-xl/blocks.3.mlp.hook_post/7';
const record: PublishedNeuronRecord = {
  layer: 3,
  neuron: 7,
  top: [
    { tokens: [' a', ' b'], activations: [2, 0.5] },
    { tokens: [' c'], activations: [1] },
  ],
  random: [{ tokens: [' d'], activations: [0] }],
  quantiles: null,
  quantileBoundaries: null,
  mean: 0.1,
  variance: null,
  skewness: 1,
  kurtosis: 3,
};
const explanation = (text: string, score: number | null) => ({
  explanation: text,
  evCorrelation: score,
  rsquared: null,
  absoluteDevExplained: null,
  sequences: 0,
});
const ids = (t: string) => (t === ' a' ? 64 : null);
const base = { unit: UNIT, model: 'gpt2-xl', source: 'mirror', layer: 3, neuron: 7 };

describe('published neurons store', () => {
  it('a neuron whose explanations were missing is completed by a later run, its records kept', async () => {
    await savePublishedNeuron(db.sql, { ...base, record, explanations: null }, ids);
    expect(await completeUnits(db.sql, [UNIT])).toEqual(new Set());
    // the next run could read the explanations file but not the records file
    const explanations = [
      explanation('letters', 0.3),
      explanation('vowels', 0.6),
      explanation('nothing', null),
    ];
    await savePublishedNeuron(db.sql, { ...base, record: null, explanations }, ids);
    expect(await completeUnits(db.sql, [UNIT])).toEqual(new Set([UNIT]));
    const row = await getPublishedNeuron(db.sql, UNIT);
    expect(row?.records?.top[0]).toEqual({ tokens: [' a', ' b'], ids: [64, null], activations: [2, 0.5] });
    expect(row).toMatchObject({
      mean: 0.1,
      variance: null,
      skewness: 1,
      kurtosis: 3,
      maxActivation: 2,
      explanations: 3,
    });
    const [best] =
      await db.sql`SELECT best_score, best_explanation FROM published_neurons WHERE unit = ${UNIT}`;
    expect(best).toEqual({ best_score: 0.6, best_explanation: 'vowels' });
    // saved twice more: still three explanations
    await savePublishedNeuron(db.sql, { ...base, record, explanations }, ids);
    await savePublishedNeuron(db.sql, { ...base, record, explanations }, ids);
    const stored = await listExplanations(db.sql, { units: [UNIT] });
    expect(stored.map((e) => [e.explanation, e.score])).toEqual([
      ['vowels', 0.6],
      ['letters', 0.3],
      ['nothing', null],
    ]);
    expect(stored[2].reason).toMatch(/no ev_correlation_score/);
  });

  it('scoring reads published records for imported units and asks the fallback for any other', async () => {
    const asked: string[] = [];
    const fallback = {
      async records(unit: string): Promise<UnitRecords> {
        asked.push(unit);
        return { top: [{ id: 'top:0', tokens: ['x'], activations: [1] }], random: [] };
      },
    };
    const source = new PublishedRecordSource(async () => db.sql, fallback);
    expect(await source.records(UNIT)).toEqual({
      top: [
        { id: 'openai:top:0', tokens: [' a', ' b'], activations: [2, 0.5] },
        { id: 'openai:top:1', tokens: [' c'], activations: [1] },
      ],
      random: [{ id: 'openai:random:0', tokens: [' d'], activations: [0] }],
    });
    expect(asked).toEqual([]);
    const other = 'gpt2-xl/blocks.3.mlp.hook_post/8';
    expect((await source.records(other)).top[0].id).toBe('top:0');
    expect(asked).toEqual([other]);
  });
});
