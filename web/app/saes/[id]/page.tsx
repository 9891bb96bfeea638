import { gql } from '@apollo/client';
import Link from 'next/link';
import { ErrorBox } from '@/components/error-box';
import { type EvalMetricsData, MetricsCells, MetricsHeader } from '@/components/sae-metrics';
import { query } from '@/lib/apollo';
import { describeError } from '@/lib/graphql-errors';
import { unitPath } from '@/lib/units';

export const dynamic = 'force-dynamic';

const PAGE = 128;

interface SaeData {
  sae: {
    id: string;
    model: string;
    hook: string;
    architecture: string;
    trainedAs: string | null;
    dIn: number;
    dSae: number;
    k: number | null;
    hasFeatureRecords: boolean;
    createdAt: string;
    metrics: EvalMetricsData | null;
  };
}

const SAE = gql`
  query SaePage($id: ID!) {
    sae(id: $id) {
      id
      model
      hook
      architecture
      trainedAs
      dIn
      dSae
      k
      hasFeatureRecords
      createdAt
      metrics {
        l0
        mse
        fvu
        explainedVariance
        cosine
        deadFraction
        denseFraction
        ceLossRecovered
        klDivergence
      }
    }
  }
`;

/** One SAE: what it is, its held-out metrics, and its features by index, a page at a time. */
export default async function SaePage(props: {
  params: Promise<{ id: string }>;
  searchParams: Promise<{ from?: string }>;
}) {
  const id = decodeURIComponent((await props.params).id);
  let data: SaeData | undefined;
  try {
    data = (await query<SaeData>({ query: SAE, variables: { id } })).data;
  } catch (error) {
    return (
      <>
        <h1>SAE {id}</h1>
        <ErrorBox {...describeError(error)} />
      </>
    );
  }
  if (!data) return null;
  const { sae } = data;
  const requested = Number((await props.searchParams).from ?? 0);
  const from = Number.isInteger(requested) && requested >= 0 && requested < sae.dSae ? requested : 0;
  const to = Math.min(sae.dSae, from + PAGE);
  return (
    <>
      <h1>SAE {sae.id}</h1>
      <p className="muted">
        <Link href={`/models/${encodeURIComponent(sae.model)}`}>{sae.model}</Link> · <code>{sae.hook}</code> ·{' '}
        {sae.architecture}
        {sae.k ? ` (k=${sae.k})` : ''}
        {sae.trainedAs ? ` · trained as ${sae.trainedAs}` : ' · imported'} · {sae.dIn} → {sae.dSae} · created{' '}
        {sae.createdAt}
      </p>
      <div className="scroll">
        <table className="saes">
          <thead>
            <tr>
              <MetricsHeader />
            </tr>
          </thead>
          <tbody>
            <tr data-sae={sae.id}>
              <MetricsCells metrics={sae.metrics} />
            </tr>
          </tbody>
        </table>
      </div>
      <p>
        <Link href={`/search?sae=${encodeURIComponent(sae.id)}`}>Encode text with this SAE</Link>
      </p>
      <h2>Features</h2>
      {sae.hasFeatureRecords ? null : (
        <p className="muted">Feature records have not been computed yet; feature pages will say so.</p>
      )}
      <form action={`/saes/${encodeURIComponent(sae.id)}/feature`} method="get" className="lookup">
        <input type="hidden" name="model" value={sae.model} />
        <label>
          feature <input name="index" type="number" min={0} max={sae.dSae - 1} defaultValue={0} required />
        </label>{' '}
        <button type="submit">Open</button>
      </form>
      <ol className="feature-grid" start={from}>
        {Array.from({ length: to - from }, (_, i) => from + i).map((index) => (
          <li key={index}>
            <Link href={unitPath(`${sae.model}/${sae.id}/${index}`)}>{index}</Link>
          </li>
        ))}
      </ol>
      <p>
        {from > 0 ? <Link href={`?from=${Math.max(0, from - PAGE)}`}>← previous</Link> : null}{' '}
        {to < sae.dSae ? <Link href={`?from=${to}`}>next →</Link> : null}
      </p>
    </>
  );
}
