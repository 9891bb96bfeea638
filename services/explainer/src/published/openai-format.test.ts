import { describe, expect, it } from 'vitest';
import {
  dataclassOf,
  firstJsonLine,
  parseNeuronRecord,
  parseNeuronSimulationResults,
  parsePythonJson,
} from './openai-format.js';

// Hand-written objects in the two forms OpenAI's files take (fast_dataclasses: with `dataclass_name`,
// or matched by field names), checked field by field.
const record = (tokens: string[], activations: number[], named: boolean) =>
  named ? { dataclass_name: 'ActivationRecord', tokens, activations } : { tokens, activations };

function neuronRecord(named: boolean) {
  const id = { layer_index: 3, neuron_index: 17 };
  const body = {
    neuron_id: named ? { dataclass_name: 'NeuronId', ...id } : id,
    random_sample: [record(['a', ' b'], [0, 0.5], named)],
    random_sample_by_quantile: [[record(['c'], [0.1], named)], [record(['d'], [0.9], named)]],
    quantile_boundaries: [0, 0.5, 1],
    mean: 0.25,
    variance: 1.5,
    skewness: -0.5,
    kurtosis: 4,
    most_positive_activation_records: [record([' x', ' y'], [3, 1], named), record(['z'], [2], named)],
  };
  return named ? { dataclass_name: 'NeuronRecord', ...body } : body;
}

describe('OpenAI dataclasses', () => {
  it('reads a NeuronRecord with and without dataclass_name alike', () => {
    const a = parseNeuronRecord(neuronRecord(true), 'a');
    const b = parseNeuronRecord(neuronRecord(false), 'b');
    expect(a).toEqual(b);
    expect(a).toEqual({
      layer: 3,
      neuron: 17,
      top: [
        { tokens: [' x', ' y'], activations: [3, 1] },
        { tokens: ['z'], activations: [2] },
      ],
      random: [{ tokens: ['a', ' b'], activations: [0, 0.5] }],
      quantiles: [[{ tokens: ['c'], activations: [0.1] }], [{ tokens: ['d'], activations: [0.9] }]],
      quantileBoundaries: [0, 0.5, 1],
      mean: 0.25,
      variance: 1.5,
      skewness: -0.5,
      kurtosis: 4,
    });
  });

  it('matches an older object whose fields are a subset of the dataclass (fields added later)', () => {
    const old = neuronRecord(false) as Record<string, unknown>;
    delete old.random_sample_by_quantile;
    delete old.quantile_boundaries;
    expect(dataclassOf(old)).toBe('NeuronRecord');
    expect(parseNeuronRecord(old, 'old')).toMatchObject({ quantiles: null, quantileBoundaries: null });
  });

  it("reads Python's bare NaN as null, and not inside strings", () => {
    const text = '{"mean": NaN, "kurtosis": -Infinity, "tokens": ["NaN", "a\\"NaN"]}';
    expect(parsePythonJson(text, 't')).toEqual({ mean: null, kurtosis: null, tokens: ['NaN', 'a"NaN'] });
    expect(() => parsePythonJson('{"mean": Nope}', 'file.json')).toThrow(/file.json: not JSON/);
  });

  it('names what is wrong in a malformed file', () => {
    expect(() =>
      parseNeuronRecord({ dataclass_name: 'NeuronId', layer_index: 1, neuron_index: 2 }, 'f.json'),
    ).toThrow('f.json: expected a NeuronRecord, found a NeuronId');
    const bad = neuronRecord(true) as Record<string, unknown>;
    bad.most_positive_activation_records = [record(['a', 'b'], [1], true)];
    expect(() => parseNeuronRecord(bad, 'f.json')).toThrow(
      /most_positive_activation_records\[0\]: 2 tokens but 1/,
    );
  });

  it('reads scored explanations, a null ev_correlation_score staying null', () => {
    const sequence = {
      simulation: {
        tokens: ['a'],
        expected_activations: [1],
        activation_scale: 'simulated_normalized_activations',
        distribution_values: [[1]],
        distribution_probabilities: [[1]],
        uncalibrated_simulation: null,
      },
      true_activations: [0.5],
      ev_correlation_score: 0.1,
      rsquared_score: null,
      absolute_dev_explained_score: null,
    };
    const results = {
      neuron_id: { layer_index: 0, neuron_index: 2 },
      scored_explanations: [
        {
          explanation: 'rivers',
          scored_simulation: {
            scored_sequence_simulations: [sequence, sequence],
            ev_correlation_score: 0.42,
            rsquared_score: 0.1,
            absolute_dev_explained_score: -0.2,
          },
        },
        {
          dataclass_name: 'ScoredExplanation',
          explanation: 'nothing',
          scored_simulation: { scored_sequence_simulations: [], ev_correlation_score: null },
        },
      ],
    };
    expect(parseNeuronSimulationResults(firstJsonLine(`\n${JSON.stringify(results)}\n`, 'e'), 'e')).toEqual({
      layer: 0,
      neuron: 2,
      explanations: [
        {
          explanation: 'rivers',
          evCorrelation: 0.42,
          rsquared: 0.1,
          absoluteDevExplained: -0.2,
          sequences: 2,
        },
        {
          explanation: 'nothing',
          evCorrelation: null,
          rsquared: null,
          absoluteDevExplained: null,
          sequences: 0,
        },
      ],
    });
  });
});
