'use client';

import { useApolloClient } from '@apollo/client/react';
import { useState } from 'react';
import { API_KEY_STORAGE } from '@/lib/api-key';
import { graphql } from '@/lib/gql';
import type { SimulatedWindowsQuery, SimulateMutation } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';
import { ErrorBox } from './error-box';
import { TokenHeatmap } from './token-heatmap';

const SIMULATE = graphql(`
  mutation Simulate($unit: ID!, $text: String!, $seed: Int) {
    score(unit: $unit, explanation: $text, method: SIMULATION, options: { seed: $seed, save: false }) {
      score {
        value
        provenance {
          recordIds {
            top
            random
          }
        }
      }
      simulatedTop {
        ok
        values
        failure
      }
      simulatedRandom {
        ok
        values
        failure
      }
    }
  }
`);

const WINDOWS = graphql(`
  query SimulatedWindows($id: ID!) {
    unit(id: $id) {
      id
      top(first: 100) {
        edges {
          node {
            window
            values
            tokens {
              id
              text
            }
          }
        }
      }
      random(first: 100) {
        edges {
          node {
            window
            values
            tokens {
              id
              text
            }
          }
        }
      }
    }
  }
`);

type Simulation = SimulateMutation['score']['simulatedTop'][number];

type WindowData = SimulatedWindowsQuery['unit']['top']['edges'][number]['node'];

interface Compared {
  recordId: string;
  window?: WindowData;
  simulation: Simulation;
}

/**
 * Simulated against true activations on the same tokens: the explanation's simulator predicts each
 * scored record (0-10) and the record's true values sit above it. Scoring is a mutation (it spends
 * LLM tokens with a real simulator), so it runs on request with the API key kept on the Jobs page.
 */
export function SimulationCompare(props: { unitId: string; explanation: string; scale: number }) {
  const client = useApolloClient();
  const [rows, setRows] = useState<Compared[]>();
  const [score, setScore] = useState<number | null>(null);
  const [error, setError] = useState<{ code: string; message: string }>();
  const [running, setRunning] = useState(false);

  async function run() {
    setRunning(true);
    setError(undefined);
    try {
      const authorization = `Bearer ${window.localStorage.getItem(API_KEY_STORAGE) ?? ''}`;
      const [simulated, windows] = await Promise.all([
        client.mutate({
          mutation: SIMULATE,
          variables: { unit: props.unitId, text: props.explanation, seed: 0 },
          context: { headers: { authorization } },
        }),
        client.query({
          query: WINDOWS,
          variables: { id: props.unitId },
          fetchPolicy: 'no-cache',
        }),
      ]);
      const result = simulated.data?.score;
      const unit = windows.data?.unit;
      if (!result || !unit) return;
      const byWindow = (side: 'top' | 'random') =>
        new Map(unit[side].edges.map((e) => [e.node.window, e.node]));
      const pick = (side: 'top' | 'random', ids: string[], sims: Simulation[]) =>
        ids.map((recordId, i) => ({
          recordId,
          window: byWindow(side).get(Number(recordId.split(':').at(-1))),
          simulation: sims[i],
        }));
      setScore(result.score.value);
      setRows([
        ...pick('top', result.score.provenance.recordIds.top, result.simulatedTop),
        ...pick('random', result.score.provenance.recordIds.random, result.simulatedRandom),
      ]);
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setRunning(false);
    }
  }

  return (
    <div className="simulation">
      <button type="button" onClick={run} disabled={running} className="simulate">
        {running ? 'Simulating…' : 'Compare simulated and true activations'}
      </button>
      {error ? <ErrorBox {...error} /> : null}
      {rows ? (
        <>
          <p className="muted">
            simulation score {score === null ? '–' : score.toFixed(3)} · top: true values, bottom: simulated
            (0-10)
          </p>
          <ol className="records compared">
            {rows.map((row) => (
              <li key={row.recordId} className="window" data-record={row.recordId}>
                <span className="max">{row.recordId}</span>
                {row.window ? (
                  <>
                    <div className="true-values">
                      <TokenHeatmap
                        tokens={row.window.tokens}
                        values={row.window.values}
                        scale={props.scale}
                      />
                    </div>
                    <div className="simulated-values">
                      {row.simulation.ok ? (
                        <TokenHeatmap tokens={row.window.tokens} values={row.simulation.values} scale={10} />
                      ) : (
                        <span className="muted">simulation failed: {row.simulation.failure}</span>
                      )}
                    </div>
                  </>
                ) : (
                  <span className="muted">record not among the unit's first 100 windows</span>
                )}
              </li>
            ))}
          </ol>
        </>
      ) : null}
    </div>
  );
}
