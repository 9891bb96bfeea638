'use client';

import { useApolloClient } from '@apollo/client/react';
import Link from 'next/link';
import { type FormEvent, useEffect, useRef, useState } from 'react';
import {
  CLAMP_MAX,
  CLAMP_MIN,
  type CollectionData,
  parseShopSetup,
  SHOP,
  SHOP_MODES,
  type ShopMode,
  type ShopSearchData,
  type ShopSetup,
  type ShopSteer,
  STRENGTH_MAX,
  STRENGTH_MIN,
  shopQueryString,
  shopVariables,
  steers,
} from '@/app/shop/setup';
import styles from '@/app/shop/shop.module.css';
import type { ShopCardFragment } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';
import { formatValue, unitPath } from '@/lib/units';
import { ErrorBox } from './error-box';
import { explanationOf, ShopResultCard } from './shop-result-card';

/** The gateway's default collection (shopSearch's collection argument). */
const DEFAULT_COLLECTION = 'shop';
/** Searches offered on an empty page: products of the catalog's taxonomy with an attribute. */
const EXAMPLES = ['waterproof hiking boots', 'organic cotton t-shirt', 'wireless headphones'];
/** Wait this long after the last slider move before searching again. */
const SLIDER_DELAY_MS = 250;
const MODE_LABEL: Record<ShopMode, string> = { ADD: 'boost / suppress', CLAMP: 'clamp at' };

/** What a feature's slider reads: off, +n / -n (ADD), = n or ablated (CLAMP). */
function steerLabel(s: ShopSteer): string {
  if (s.mode === 'CLAMP') return s.strength === 0 ? 'ablated' : `= ${s.strength}`;
  return s.strength === 0 ? 'off' : s.strength > 0 ? `+${s.strength}` : String(s.strength);
}

function ResultColumn(props: {
  name: 'steered' | 'unsteered' | 'results';
  caption: string;
  results: ShopCardFragment[];
}) {
  return (
    <section className={`${styles.column} column`} data-column={props.name}>
      <h2>{props.caption}</h2>
      {props.results.length === 0 ? <p className="muted">no products</p> : null}
      <ol>
        {props.results.map((r) => (
          <ShopResultCard key={r.id} result={r} />
        ))}
      </ol>
    </section>
  );
}

const CHOICE: Record<ShopSearchData['saeChoice'], string> = {
  ARGUMENT: 'as asked',
  WORKSPACE: "the demo workspace's SAE",
  HOOK: "the newest SAE on the collection's hook",
  NONE: '',
};

/**
 * The search form, the query's features with a steering slider each, and the results (steered and
 * unsteered side by side once a slider is off 0). Fields are named as the URL's parameters, so without
 * JavaScript the form submits to /shop and the server answers; with JavaScript searches run through
 * Apollo Client and the address bar follows, so the link reproduces the view.
 */
export function ShopSearch(props: {
  initialSetup: ShopSetup;
  initialResult?: ShopSearchData;
  initialError?: { code: string; message: string };
  /** undefined when they could not be listed */
  collections?: CollectionData[];
}) {
  const client = useApolloClient();
  const [setup, setSetup] = useState(props.initialSetup);
  const [result, setResult] = useState(props.initialResult);
  const [error, setError] = useState(props.initialError);
  const [running, setRunning] = useState(false);
  const latest = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);

  async function run(next: ShopSetup) {
    const mine = ++latest.current;
    setRunning(true);
    setError(undefined);
    try {
      const answer = await client.query({
        query: SHOP,
        variables: shopVariables(next),
        fetchPolicy: 'no-cache',
      });
      if (mine !== latest.current) return;
      setResult(answer.data?.shopSearch);
      window.history.replaceState(null, '', `/shop?${shopQueryString(next)}`);
    } catch (failure) {
      if (mine !== latest.current) return;
      setResult(undefined);
      setError(describeError(failure));
    } finally {
      if (mine === latest.current) setRunning(false);
    }
  }

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const keys = ['q', 'k', 'collection', 'sae', 'unit', 'strength', 'mode'];
    const next = parseShopSetup(Object.fromEntries(keys.map((key) => [key, form.getAll(key).map(String)])));
    setSetup(next);
    if (next.query !== '') void run(next);
  }

  function steer(unit: string, change: Partial<Pick<ShopSteer, 'strength' | 'mode'>>) {
    const edit = { ...steeringOf(unit), ...change };
    // a clamp holds a ReLU / JumpReLU activation, which is never negative: the slider starts at 0
    if (edit.mode === 'CLAMP') edit.strength = Math.min(Math.max(edit.strength, CLAMP_MIN), CLAMP_MAX);
    const others = setup.steering.filter((s) => s.unit !== unit);
    const next = { ...setup, steering: steers(edit) ? [...others, edit] : others };
    setSetup(next);
    clearTimeout(timer.current);
    if (next.query !== '') timer.current = setTimeout(() => void run(next), SLIDER_DELAY_MS);
  }

  // the collection searched is not there (undefined: they could not be listed, so nothing is known)
  const wanted = setup.collection || DEFAULT_COLLECTION;
  const missing = props.collections !== undefined && !props.collections.some((c) => c.name === wanted);

  // a slider for each of the query's features, and for steered units that are not among them
  const steeringOf = (unit: string): ShopSteer =>
    setup.steering.find((s) => s.unit === unit) ?? { unit, strength: 0, mode: 'ADD' };
  const rows = (result?.queryFeatures ?? []).map((f) => ({
    unit: f.feature.id,
    label: `#${f.feature.index}`,
    explanation: explanationOf(f.feature),
    value: f.value as number | null,
  }));
  for (const s of setup.steering)
    if (!rows.some((r) => r.unit === s.unit))
      rows.push({
        unit: s.unit,
        label: s.unit,
        explanation: 'steered, not among the query’s features',
        value: null,
      });

  return (
    <form method="get" action="/shop" onSubmit={submit}>
      <div className={styles.form}>
        <input
          name="q"
          type="search"
          aria-label="search products"
          placeholder="e.g. waterproof hiking boots"
          defaultValue={props.initialSetup.query}
          required
        />
        <label>
          results{' '}
          <input
            name="k"
            type="number"
            min={1}
            max={50}
            defaultValue={props.initialSetup.k}
            style={{ width: '4rem' }}
          />
        </label>
        {props.collections && props.collections.length > 1 ? (
          <label>
            collection{' '}
            <select name="collection" defaultValue={setup.collection || DEFAULT_COLLECTION}>
              {props.collections.map((c) => (
                <option key={c.name} value={c.name}>
                  {c.name} ({c.count} at {c.hook})
                </option>
              ))}
            </select>
          </label>
        ) : setup.collection ? (
          <input type="hidden" name="collection" value={setup.collection} />
        ) : null}
        {setup.saeId ? <input type="hidden" name="sae" value={setup.saeId} /> : null}
        <button type="submit" disabled={running}>
          {running ? 'Searching…' : 'Search'}
        </button>
      </div>
      {missing ? (
        <p className="muted no-collections" role="status">
          {props.collections?.length === 0
            ? 'No products indexed yet. '
            : `There is no collection "${wanted}" (there are ${props.collections?.map((c) => `"${c.name}"`).join(', ')}). `}
          The first run's demo workspace indexes the generated catalog at its SAE's hook as its last step (its
          progress is on the <Link href="/">home page</Link>); or run{' '}
          <code>
            npx loupe demo shop index{wanted === DEFAULT_COLLECTION ? '' : ` --collection ${wanted}`}
          </code>
          , which embeds it at the demo SAE's hook.
        </p>
      ) : null}
      {error && !(missing && error.code === 'NOT_FOUND') ? <ErrorBox {...error} /> : null}
      {!result && !error && !missing && setup.query === '' ? (
        <p className="muted examples">
          Try{' '}
          {EXAMPLES.map((q, i) => (
            <span key={q}>
              {i > 0 ? ', ' : null}
              <Link href={`/shop?${shopQueryString({ ...setup, query: q, steering: [] })}`}>{q}</Link>
            </span>
          ))}
          .
        </p>
      ) : null}
      {result ? (
        <div className={styles.layout}>
          <aside className={`${styles.features} query-features`}>
            <h2>Query features</h2>
            <p className="muted">
              {result.sae ? (
                <>
                  SAE <Link href={`/saes/${encodeURIComponent(result.sae.id)}`}>{result.sae.id}</Link> at{' '}
                  {result.sae.hook}
                  {CHOICE[result.saeChoice] ? ` (${CHOICE[result.saeChoice]})` : ''}; slide right to boost a
                  feature, left to suppress it, or clamp it at a value (0 ablates it; standard and JumpReLU
                  SAEs).
                </>
              ) : (
                `No SAE reads ${result.collection.hook}, the hook collection "${result.collection.name}" was embedded at; add ?sae=<id> to choose one.`
              )}
            </p>
            {rows.map((row) => {
              const edit = steeringOf(row.unit);
              const clamp = edit.mode === 'CLAMP';
              return (
                <div key={row.unit} className={`${styles.feature} feature`} data-unit={row.unit}>
                  <Link href={unitPath(row.unit)}>{row.label}</Link>
                  <span className="muted">{row.value === null ? '' : formatValue(row.value)}</span>
                  <span className={`${styles.explanation} explanation`}>{row.explanation}</span>
                  <input type="hidden" name="unit" value={row.unit} />
                  <select
                    name="mode"
                    aria-label={`steering mode of ${row.label}`}
                    className={`${styles.mode} mode`}
                    value={edit.mode}
                    onChange={(e) => steer(row.unit, { mode: e.target.value as ShopMode })}
                  >
                    {SHOP_MODES.map((m) => (
                      <option key={m} value={m}>
                        {MODE_LABEL[m]}
                      </option>
                    ))}
                  </select>
                  <input
                    type="range"
                    name="strength"
                    aria-label={`steer ${row.label}`}
                    min={clamp ? CLAMP_MIN : STRENGTH_MIN}
                    max={clamp ? CLAMP_MAX : STRENGTH_MAX}
                    step={clamp ? 0.1 : 1}
                    value={edit.strength}
                    onChange={(e) => steer(row.unit, { strength: Number(e.target.value) })}
                  />
                  <output className="strength">{steerLabel(edit)}</output>
                </div>
              );
            })}
          </aside>
          <div className={styles.columns}>
            {result.unsteered ? (
              <>
                <ResultColumn name="steered" caption="steered" results={result.results} />
                <ResultColumn name="unsteered" caption="unsteered" results={result.unsteered} />
              </>
            ) : (
              <ResultColumn
                name="results"
                caption={`results from ${result.collection.name}`}
                results={result.results}
              />
            )}
          </div>
        </div>
      ) : null}
    </form>
  );
}
