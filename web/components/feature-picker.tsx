'use client';

import { useApolloClient } from '@apollo/client/react';
import Link from 'next/link';
import { type FormEvent, useState } from 'react';
import { describeError } from '@/lib/graphql-errors';
import {
  FEATURE_SEARCH,
  FEATURE_SUGGESTIONS,
  type FeatureChoice,
  SUGGESTED_FEATURES,
  toPicks,
} from '@/lib/steer-setup';
import { unitPath } from '@/lib/units';
import { ErrorBox } from './error-box';

/** Search results shown. */
const FOUND = 10;

export interface PickerSae {
  id: string;
  model: string;
  hook: string;
}

/**
 * Picks SAE features to steer with, without knowing their ids: an SAE's best-scored features to begin
 * with, and a search of its features' explanations (searchExplanations by the SAE's id prefix).
 * "add" puts the feature into the playground's edits.
 */
export function FeaturePicker(props: {
  saes: PickerSae[];
  initialSae: string;
  initialPicks: FeatureChoice[];
  /** units already among the edits */
  picked: string[];
  onPick(unit: string): void;
}) {
  const client = useApolloClient();
  const [saeId, setSaeId] = useState(props.initialSae);
  const [text, setText] = useState('');
  const [searched, setSearched] = useState('');
  const [picks, setPicks] = useState(props.initialPicks);
  const [error, setError] = useState<{ code: string; message: string }>();
  const [busy, setBusy] = useState(false);

  async function load(id: string, query: string) {
    const sae = props.saes.find((s) => s.id === id);
    if (!sae) return;
    setBusy(true);
    setError(undefined);
    try {
      if (query === '') {
        const answer = await client.query({
          query: FEATURE_SUGGESTIONS,
          variables: { saeId: sae.id, first: SUGGESTED_FEATURES },
          fetchPolicy: 'no-cache',
        });
        setPicks(toPicks((answer.data?.saeFeatures.edges ?? []).map((e) => e.node)));
      } else {
        const answer = await client.query({
          query: FEATURE_SEARCH,
          variables: { query, prefix: `${sae.model}/${sae.id}/`, first: FOUND },
          fetchPolicy: 'no-cache',
        });
        // one row per feature, with the explanation that matched
        const seen = new Set<string>();
        const rows: FeatureChoice[] = [];
        for (const e of answer.data?.searchExplanations.edges ?? []) {
          if (seen.has(e.node.id)) continue;
          seen.add(e.node.id);
          rows.push({ id: e.node.id, index: e.node.index, explanation: e.explanation.text });
        }
        setPicks(rows);
      }
      setSearched(query);
    } catch (failure) {
      setPicks([]);
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  }

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    void load(saeId, text.trim());
  }

  return (
    <section className="feature-picker" aria-label="pick features">
      <h2>Features</h2>
      <form className="feature-search" onSubmit={submit}>
        <label>
          SAE{' '}
          <select
            value={saeId}
            aria-label="SAE to pick features from"
            onChange={(e) => {
              setSaeId(e.target.value);
              void load(e.target.value, text.trim());
            }}
          >
            {props.saes.map((s) => (
              <option key={s.id} value={s.id}>
                {s.id} ({s.hook})
              </option>
            ))}
          </select>
        </label>{' '}
        <input
          type="search"
          aria-label="search feature explanations"
          placeholder="search explanations, e.g. punctuation"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />{' '}
        {/* a plain button: the playground's Steer stays the page's one submit button (Enter still searches) */}
        <button type="button" disabled={busy} onClick={() => void load(saeId, text.trim())}>
          {busy ? 'Finding…' : 'Find'}
        </button>
      </form>
      <p className="muted picks-caption">
        {searched === ''
          ? `Best-scored features of ${saeId}; search their explanations to find others.`
          : `Features of ${saeId} whose explanations match “${searched}”.`}
      </p>
      {error ? <ErrorBox {...error} /> : null}
      {picks.length === 0 && !error ? <p className="muted">No features found.</p> : null}
      <ul className="picks">
        {picks.map((p) => (
          <li key={p.id} data-unit={p.id}>
            <button
              type="button"
              onClick={() => props.onPick(p.id)}
              disabled={props.picked.includes(p.id)}
              aria-label={`steer with feature ${p.index}`}
            >
              add
            </button>{' '}
            <Link href={unitPath(p.id)}>#{p.index}</Link>{' '}
            <span className="explanation">{p.explanation ?? 'not explained yet'}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
