import Link from 'next/link';
import { ErrorBox } from '@/components/error-box';
import { Histogram } from '@/components/histogram';
import { MetricsCells, MetricsHeader } from '@/components/sae-metrics';
import { parseOrder, UnitList, type UnitListConnection } from '@/components/unit-list';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import type { SaePageQuery } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';
import { unitPath } from '@/lib/units';

export const dynamic = 'force-dynamic';

const PAGE = 128;
const LIST_PAGE = 50;

const SAE_FEATURES = graphql(`
  query SaeFeatures($saeId: ID!, $order: UnitOrder, $first: Int, $after: String) {
    saeFeatures(saeId: $saeId, orderBy: $order, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        score
        node {
          ...UnitListUnit
        }
      }
    }
  }
`);

const SAE = graphql(`
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
        ...SaeMetrics
      }
      featureDensity {
        tokens
        features
        dead
        bins {
          log10From
          log10To
          count
        }
      }
    }
  }
`);

/** One SAE: what it is, its held-out metrics, and its features by index, a page at a time. */
export default async function SaePage(props: {
  params: Promise<{ id: string }>;
  searchParams: Promise<{ from?: string; order?: string; after?: string }>;
}) {
  const id = decodeURIComponent((await props.params).id);
  let data: SaePageQuery | undefined;
  try {
    data = (await query({ query: SAE, variables: { id } })).data;
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
  const search = await props.searchParams;
  const requested = Number(search.from ?? 0);
  const order = parseOrder(search.order);
  let list: UnitListConnection | undefined;
  let listError: { code: string; message: string } | undefined;
  if (sae.hasFeatureRecords) {
    try {
      list = (
        await query({
          query: SAE_FEATURES,
          variables: { saeId: sae.id, order, first: LIST_PAGE, after: search.after ?? null },
        })
      ).data?.saeFeatures;
    } catch (error) {
      listError = describeError(error);
    }
  }
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
      {sae.featureDensity ? <FeatureDensity density={sae.featureDensity} /> : null}
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
      {listError ? <ErrorBox {...listError} /> : null}
      {list ? (
        <UnitList
          edges={list.edges}
          totalCount={list.totalCount}
          order={order}
          endCursor={list.pageInfo.endCursor}
          hasNextPage={list.pageInfo.hasNextPage}
        />
      ) : (
        <FeatureGrid model={sae.model} saeId={sae.id} from={from} to={to} dSae={sae.dSae} />
      )}
    </>
  );
}

/** The feature-density histogram: features by log10 of the fraction of tokens they fire on. */
function FeatureDensity(props: { density: NonNullable<SaePageQuery['sae']['featureDensity']> }) {
  const { bins, dead, features, tokens } = props.density;
  return (
    <section className="feature-density">
      <h2>Feature density</h2>
      {bins.length > 0 ? (
        <Histogram
          counts={bins.map((b) => b.count)}
          min={bins[0].log10From}
          max={bins[bins.length - 1].log10To}
          label="feature density histogram"
          axis="log10 firing frequency"
        />
      ) : null}
      <p className="muted" data-dead={dead}>
        {features.toLocaleString('en')} features over {tokens.toLocaleString('en')} tokens;{' '}
        {dead.toLocaleString('en')} never fired (not drawn).
      </p>
    </section>
  );
}

/** Features by index, for an SAE whose records (and so its sortable list) are not computed yet. */
function FeatureGrid(props: { model: string; saeId: string; from: number; to: number; dSae: number }) {
  const { from, to } = props;
  return (
    <>
      <ol className="feature-grid" start={from}>
        {Array.from({ length: to - from }, (_, i) => from + i).map((index) => (
          <li key={index}>
            <Link href={unitPath(`${props.model}/${props.saeId}/${index}`)}>{index}</Link>
          </li>
        ))}
      </ol>
      <p>
        {from > 0 ? <Link href={`?from=${Math.max(0, from - PAGE)}`}>← previous</Link> : null}{' '}
        {to < props.dSae ? <Link href={`?from=${to}`}>next →</Link> : null}
      </p>
    </>
  );
}
