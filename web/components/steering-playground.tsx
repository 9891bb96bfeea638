'use client';

import { useApolloClient } from '@apollo/client/react';
import { type FormEvent, useState } from 'react';
import { describeError } from '@/lib/graphql-errors';
import {
  type FeatureChoice,
  MODES,
  type Mode,
  parseSetup,
  STEER,
  type SteerResultData,
  type SteerSetup,
  setupQuery,
  steerVariables,
} from '@/lib/steer-setup';
import { ErrorBox } from './error-box';
import { FeaturePicker, type PickerSae } from './feature-picker';

/** The prompt a fresh playground starts with, so one click on Steer runs something. */
const EXAMPLE_PROMPT = 'Once upon a time';

/**
 * The playground's form. Its fields are named as the URL's parameters, so without JavaScript it submits
 * to /steer and the server answers; with JavaScript it runs the steer query through Apollo Client, then
 * writes the setup (with the seed used) into the address bar so the link reproduces the result.
 */
export function SteeringPlayground(props: {
  initialSetup: SteerSetup;
  initialResult?: SteerResultData;
  initialError?: { code: string; message: string };
  /** where features are picked from: steerable SAEs, the one to start with and its first features */
  picker?: { saes: PickerSae[]; initialSae: string; initialPicks: FeatureChoice[] };
}) {
  const client = useApolloClient();
  const [edits, setEdits] = useState(props.initialSetup.edits);
  const [result, setResult] = useState(props.initialResult);
  const [error, setError] = useState(props.initialError);
  const [running, setRunning] = useState(false);
  const setup = props.initialSetup;

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const keys = ['prompt', 'unit', 'strength', 'mode', 'seed', 'maxTokens', 'temperature', 'topK'];
    const next = parseSetup(Object.fromEntries(keys.map((key) => [key, form.getAll(key).map(String)])));
    setRunning(true);
    setError(undefined);
    try {
      const answer = await client.query({
        query: STEER,
        variables: steerVariables(next),
        fetchPolicy: 'no-cache',
      });
      const steer = answer.data?.steer;
      setResult(steer);
      if (steer) window.history.replaceState(null, '', `/steer?${setupQuery({ ...next, seed: steer.seed })}`);
    } catch (failure) {
      setResult(undefined);
      setError(describeError(failure));
    } finally {
      setRunning(false);
    }
  }

  function update(i: number, change: Partial<{ unit: string; strength: number; mode: Mode }>) {
    setEdits(edits.map((e, j) => (j === i ? { ...e, ...change } : e)));
  }

  /** A picked feature fills the first empty edit, or comes as a new one. */
  function pick(unit: string) {
    const empty = edits.findIndex((e) => e.unit.trim() === '');
    if (empty >= 0) update(empty, { unit });
    else setEdits([...edits, { unit, strength: 10, mode: 'ADD' }]);
  }

  return (
    <>
      {props.picker ? (
        <FeaturePicker
          saes={props.picker.saes}
          initialSae={props.picker.initialSae}
          initialPicks={props.picker.initialPicks}
          picked={edits.map((e) => e.unit.trim())}
          onPick={pick}
        />
      ) : null}
      <form method="get" action="/steer" onSubmit={submit} className="steer-form">
        <label className="wide">
          prompt
          <textarea
            name="prompt"
            rows={3}
            defaultValue={setup.prompt === '' ? EXAMPLE_PROMPT : setup.prompt}
            required
          />
        </label>
        <fieldset>
          <legend>edits</legend>
          {edits.map((edit, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: rows are positional
            <div key={i} className="edit-row">
              <input
                name="unit"
                aria-label="unit id"
                placeholder="model/sae-id/index"
                value={edit.unit}
                onChange={(e) => update(i, { unit: e.target.value })}
              />
              <input
                name="strength"
                aria-label="strength"
                type="number"
                step="any"
                value={edit.strength}
                onChange={(e) => update(i, { strength: Number(e.target.value) })}
              />
              <select
                name="mode"
                aria-label="mode"
                value={edit.mode}
                onChange={(e) => update(i, { mode: e.target.value as Mode })}
              >
                {MODES.map((m) => (
                  <option key={m} value={m}>
                    {m.toLowerCase()}
                  </option>
                ))}
              </select>
              <button
                type="button"
                onClick={() => setEdits(edits.filter((_, j) => j !== i))}
                aria-label="remove edit"
              >
                ×
              </button>
            </div>
          ))}
          <button type="button" onClick={() => setEdits([...edits, { unit: '', strength: 10, mode: 'ADD' }])}>
            add unit
          </button>
        </fieldset>
        <div className="options">
          <label>
            seed{' '}
            <input
              name="seed"
              type="number"
              defaultValue={setup.seed ?? result?.seed ?? ''}
              placeholder="random"
            />
          </label>
          <label>
            max tokens{' '}
            <input name="maxTokens" type="number" min={1} max={256} defaultValue={setup.maxTokens} />
          </label>
          <label>
            temperature{' '}
            <input name="temperature" type="number" min={0} step="any" defaultValue={setup.temperature} />
          </label>
          <label>
            top-k <input name="topK" type="number" min={0} defaultValue={setup.topK} />
          </label>
        </div>
        <button type="submit" disabled={running}>
          {running ? 'Generating…' : 'Steer'}
        </button>
      </form>
      {error ? <ErrorBox {...error} /> : null}
      {result ? (
        <section className="completions" data-seed={result.seed}>
          <p className="muted">seed {result.seed}</p>
          <div className="side-by-side">
            <figure>
              <figcaption>steered</figcaption>
              <p className="completion">
                <span className="prompt">{result.prompt}</span>
                <span className="steered">{result.steered.text}</span>
              </p>
            </figure>
            <figure>
              <figcaption>default</figcaption>
              <p className="completion">
                <span className="prompt">{result.prompt}</span>
                <span className="unsteered">{result.unsteered.text}</span>
              </p>
            </figure>
          </div>
        </section>
      ) : null}
    </>
  );
}
