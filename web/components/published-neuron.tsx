import Link from 'next/link';
import { graphql } from '@/lib/gql';
import type { PublishedNeuronFieldsFragment, PublishedRecordFieldsFragment } from '@/lib/gql/graphql';
import { formatValue } from '@/lib/units';
import { TokenHeatmap } from './token-heatmap';

export const PUBLISHED_NEURON_FIELDS = graphql(`
  fragment PublishedNeuronFields on PublishedNeuron {
    unitId
    source
    publisher
    mean
    variance
    skewness
    kurtosis
    maxActivation
    bestScore
    bestExplanation
  }
`);

export const PUBLISHED_RECORD_FIELDS = graphql(`
  fragment PublishedRecordFields on PublishedRecord {
    tokens
    activations
  }
`);

/** The scoring job form on the Jobs page, filled in with this unit (the configured simulator scores it). */
export function rescorePath(unitId: string): string {
  return `/jobs?units=${encodeURIComponent(unitId)}#score`;
}

/** What the publisher says of a neuron: who, from where, its best score and its activation moments. */
export function PublishedSummary(props: { published: PublishedNeuronFieldsFragment }) {
  const p = props.published;
  const moments: [string, number | null][] = [
    ['max activation', p.maxActivation],
    ['mean', p.mean],
    ['variance', p.variance],
    ['skewness', p.skewness],
    ['kurtosis', p.kurtosis],
  ];
  return (
    <section className="published-summary" data-publisher={p.publisher} data-best-score={p.bestScore ?? ''}>
      <h2>Published</h2>
      <p>
        {p.publisher}: best score{' '}
        <strong className="best-score">{p.bestScore === null ? '–' : p.bestScore.toFixed(3)}</strong>
        {p.bestExplanation ? (
          <>
            {' '}
            for <q>{p.bestExplanation}</q>
          </>
        ) : null}{' '}
        ·{' '}
        <Link href={rescorePath(p.unitId)} className="rescore-link">
          re-score with the configured simulator
        </Link>
      </p>
      <dl className="stats">
        {moments
          .filter(([, v]) => v !== null)
          .map(([label, v]) => (
            <div key={label}>
              <dt>{label} (published)</dt>
              <dd>{formatValue(v as number)}</dd>
            </div>
          ))}
      </dl>
      <p className="muted">
        imported from <code>{p.source}</code>
      </p>
    </section>
  );
}

/** Published windows as heat maps on a common scale, in published order. */
export function PublishedRecords(props: { records: PublishedRecordFieldsFragment[]; scale: number }) {
  if (props.records.length === 0) return <p className="muted">No windows.</p>;
  return (
    <ol className="records">
      {props.records.map((r, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: published order is the identity
        <li key={i} className="window published-window" data-max={Math.max(...r.activations)}>
          <span className="max">{formatValue(Math.max(...r.activations))}</span>
          <TokenHeatmap
            tokens={r.tokens.map((text) => ({ text }))}
            values={r.activations}
            scale={props.scale}
          />
        </li>
      ))}
    </ol>
  );
}
