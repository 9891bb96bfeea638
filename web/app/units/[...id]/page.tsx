import Link from 'next/link';
import { ApolloProvider } from '@/components/apollo-provider';
import { ErrorBox } from '@/components/error-box';
import { ExplanationList } from '@/components/explanation-list';
import { Histogram } from '@/components/histogram';
import { PublishedRecords, PublishedSummary, rescorePath } from '@/components/published-neuron';
import { RecordList } from '@/components/record-list';
import { SimulationCompare } from '@/components/simulation-compare';
import { UnitWeights } from '@/components/unit-weights';
import { query } from '@/lib/apollo';
import { gatewayWsUrl } from '@/lib/config';
import { graphql } from '@/lib/gql';
import type { PublishedUnitPageQuery, UnitPageQuery } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';
import { formatValue, unitIdFromSegments, unitPath } from '@/lib/units';

export const dynamic = 'force-dynamic';

const TABS = ['top', 'random', 'quantiles'] as const;
type Tab = (typeof TABS)[number];

// asked separately: a unit's records still show when the explainer is down
const EXPLANATIONS = graphql(`
  query UnitExplanations($id: ID!) {
    unit(id: $id) {
      id
      explanations(first: 5) {
        totalCount
        edges {
          node {
            ...ExplanationListItem
          }
        }
      }
    }
  }
`);

// asked separately too: only imported neurons have one, and the records still show when the explainer is down
const PUBLISHED = graphql(`
  query UnitPublished($id: ID!) {
    publishedNeuron(unitId: $id) {
      ...PublishedNeuronFields
    }
  }
`);

// a neuron imported but never captured: Loupe has no records of its own, the publisher's stand in
const PUBLISHED_UNIT = graphql(`
  query PublishedUnitPage($id: ID!) {
    publishedNeuron(unitId: $id) {
      ...PublishedNeuronFields
      layer
      neuron
      top {
        ...PublishedRecordFields
      }
      random {
        ...PublishedRecordFields
      }
      quantiles {
        ...PublishedRecordFields
      }
      explanations(first: 5) {
        totalCount
        edges {
          node {
            ...ExplanationListItem
          }
        }
      }
    }
  }
`);

const NEURON_ID = /\/blocks\.\d+\.mlp\.hook_post\/\d+$/;

const UNIT = graphql(`
  query UnitPage($id: ID!) {
    unit(id: $id) {
      __typename
      id
      model
      index
      ... on Neuron {
        hook
        layer
        captureJobId
      }
      ... on Feature {
        sae {
          id
          hook
          dSae
        }
      }
      ...UnitWeights
      stats {
        maxActivation
        minActivation
        meanActivation
        fractionNonzero
        tokens
      }
      histogram {
        min
        max
        counts
      }
      top(first: 20) {
        totalCount
        edges {
          node {
            ...WindowFields
          }
        }
      }
      random(first: 20) {
        totalCount
        edges {
          node {
            ...WindowFields
          }
        }
      }
      quantiles {
        from
        to
        windows(first: 5) {
          totalCount
          edges {
            node {
              ...WindowFields
            }
          }
        }
      }
    }
  }
`);

export default async function UnitPage(props: {
  params: Promise<{ id: string[] }>;
  searchParams: Promise<{ tab?: string }>;
}) {
  const { id: segments } = await props.params;
  const { tab: requested } = await props.searchParams;
  const tab: Tab = (TABS as readonly string[]).includes(requested ?? '') ? (requested as Tab) : 'top';
  const id = unitIdFromSegments(segments);
  let data: UnitPageQuery | undefined;
  const explanations = query({ query: EXPLANATIONS, variables: { id } }).then(
    (answer) => ({ ok: true as const, value: answer.data?.unit.explanations }),
    (error: unknown) => ({ ok: false as const, error: describeError(error) }),
  );
  const published = NEURON_ID.test(id)
    ? query({ query: PUBLISHED, variables: { id } }).then(
        (answer) => answer.data?.publishedNeuron ?? null,
        () => null,
      )
    : Promise.resolve(null);
  try {
    data = (await query({ query: UNIT, variables: { id } })).data;
  } catch (error) {
    const failure = describeError(error);
    // no capture job recorded it: an imported neuron still has its publisher's records
    const fallback = failure.code === 'NOT_FOUND' && NEURON_ID.test(id) ? await publishedUnit(id) : null;
    if (fallback) return <PublishedUnit published={fallback} tab={tab} />;
    return (
      <>
        <h1>{id}</h1>
        <ErrorBox {...failure} />
      </>
    );
  }
  if (!data) return null;
  const { unit } = data;
  const neuron = unit.__typename === 'Neuron' ? unit : undefined;
  const feature = unit.__typename === 'Feature' ? unit : undefined;
  const [explained, publishedNeuron] = await Promise.all([explanations, published]);
  const scale = Math.max(Math.abs(unit.stats.maxActivation), Math.abs(unit.stats.minActivation ?? 0));
  const last = feature ? feature.sae.dSae - 1 : Number.POSITIVE_INFINITY;
  return (
    <>
      <h1>
        {unit.__typename === 'Neuron' ? 'Neuron' : 'Feature'} {unit.index}
      </h1>
      <p className="muted">
        <code>{unit.id}</code>
        {neuron?.captureJobId ? ` · records from capture job ${neuron.captureJobId}` : null}
        {feature ? (
          <>
            {' · '}
            <Link href={`/saes/${encodeURIComponent(feature.sae.id)}`} className="sae-link">
              SAE {feature.sae.id}
            </Link>{' '}
            on <code>{feature.sae.hook}</code>
            {/resid_pre$/.test(feature.sae.hook) ? (
              <>
                {' · '}
                <Link href={`/steer?unit=${encodeURIComponent(unit.id)}&strength=10`} className="steer-link">
                  steer with it
                </Link>
              </>
            ) : null}
          </>
        ) : null}
      </p>
      <p>
        {unit.index > 0 ? (
          <Link href={unitPath(siblingId(unit.id, unit.index - 1))}>← {unit.index - 1}</Link>
        ) : null}{' '}
        {unit.index < last ? (
          <Link href={unitPath(siblingId(unit.id, unit.index + 1))}>{unit.index + 1} →</Link>
        ) : null}
      </p>
      <dl className="stats">
        <Stat label="max activation" value={formatValue(unit.stats.maxActivation)} />
        {unit.stats.minActivation === null ? null : (
          <Stat label="min activation" value={formatValue(unit.stats.minActivation)} />
        )}
        <Stat label="mean activation" value={formatValue(unit.stats.meanActivation)} />
        <Stat
          label={feature ? 'frequency' : 'fraction non-zero'}
          value={`${(100 * unit.stats.fractionNonzero).toFixed(2)}%`}
        />
        <Stat label="tokens" value={unit.stats.tokens.toLocaleString('en')} />
      </dl>
      {publishedNeuron ? <PublishedSummary published={publishedNeuron} /> : null}
      <section className="explanations-section">
        <h2>Explanations</h2>
        {!explained.ok ? (
          <ErrorBox {...explained.error} />
        ) : explained.value ? (
          <>
            <ExplanationList
              explanations={explained.value.edges.map((e) => e.node)}
              totalCount={explained.value.totalCount}
            />
            {explained.value.edges[0] ? (
              <ApolloProvider wsUrl={gatewayWsUrl()}>
                <SimulationCompare
                  unitId={unit.id}
                  explanation={explained.value.edges[0].node.text}
                  scale={scale}
                />
              </ApolloProvider>
            ) : null}
          </>
        ) : null}
      </section>
      <Histogram counts={unit.histogram.counts} min={unit.histogram.min} max={unit.histogram.max} />
      <UnitWeights unit={unit} />
      <nav className="tabs" aria-label="records">
        {TABS.map((t) => (
          <Link key={t} href={`?tab=${t}`} aria-current={t === tab ? 'page' : undefined} scroll={false}>
            {t}
          </Link>
        ))}
      </nav>
      {tab === 'top' ? <RecordList windows={unit.top.edges.map((e) => e.node)} scale={scale} /> : null}
      {tab === 'random' ? <RecordList windows={unit.random.edges.map((e) => e.node)} scale={scale} /> : null}
      {tab === 'quantiles'
        ? unit.quantiles.map((bin) => (
            <section key={`${bin.from}-${bin.to}`}>
              <h3>
                quantile {bin.from} – {bin.to}
              </h3>
              <RecordList windows={bin.windows.edges.map((e) => e.node)} scale={scale} />
            </section>
          ))
        : null}
    </>
  );
}

type PublishedUnitData = NonNullable<PublishedUnitPageQuery['publishedNeuron']>;

/** The published view of a neuron, or null when it was not imported (or the explainer cannot say). */
async function publishedUnit(id: string): Promise<PublishedUnitData | null> {
  try {
    return (await query({ query: PUBLISHED_UNIT, variables: { id } })).data?.publishedNeuron ?? null;
  } catch {
    return null;
  }
}

/**
 * A neuron imported from a published dataset that no capture job recorded: its published explanations
 * (with any Loupe re-score beside them), moments and windows, and how to get Loupe's own.
 */
function PublishedUnit(props: { published: PublishedUnitData; tab: Tab }) {
  const p = props.published;
  const all = [...p.top, ...p.random, ...p.quantiles.flat()];
  const scale = Math.max(0, ...all.flatMap((r) => r.activations.map(Math.abs)));
  const hook = `blocks.${p.layer}.mlp.hook_post`;
  return (
    <>
      <h1>Neuron {p.neuron}</h1>
      <p className="muted published-only">
        <code>{p.unitId}</code> · no capture job has recorded <code>{hook}</code>: these are the records{' '}
        {p.publisher.replace(/^published by /, '')} published. Capture Loupe&apos;s own on the{' '}
        <Link href="/jobs">Jobs page</Link>.
      </p>
      <p>
        {p.neuron > 0 ? (
          <Link href={unitPath(siblingId(p.unitId, p.neuron - 1))}>← {p.neuron - 1}</Link>
        ) : null}{' '}
        <Link href={unitPath(siblingId(p.unitId, p.neuron + 1))}>{p.neuron + 1} →</Link>
      </p>
      <PublishedSummary published={p} />
      <section className="explanations-section">
        <h2>Explanations</h2>
        <ExplanationList
          explanations={p.explanations.edges.map((e) => e.node)}
          totalCount={p.explanations.totalCount}
        />
        <p>
          <Link href={rescorePath(p.unitId)} className="rescore-link">
            Re-score with the configured simulator
          </Link>{' '}
          <span className="muted">(a scoring job on the published records)</span>
        </p>
      </section>
      <nav className="tabs" aria-label="records">
        {TABS.map((t) => (
          <Link key={t} href={`?tab=${t}`} aria-current={t === props.tab ? 'page' : undefined} scroll={false}>
            {t}
          </Link>
        ))}
      </nav>
      <div className="published-records">
        {props.tab === 'top' ? <PublishedRecords records={p.top} scale={scale} /> : null}
        {props.tab === 'random' ? <PublishedRecords records={p.random} scale={scale} /> : null}
        {props.tab === 'quantiles'
          ? p.quantiles.map((bin, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: quantile bins are positional
              <section key={i}>
                <h3>quantile {i + 1}</h3>
                <PublishedRecords records={bin} scale={scale} />
              </section>
            ))
          : null}
      </div>
    </>
  );
}

function Stat(props: { label: string; value: string }) {
  return (
    <div>
      <dt>{props.label}</dt>
      <dd>{props.value}</dd>
    </div>
  );
}

function siblingId(id: string, index: number): string {
  return `${id.slice(0, id.lastIndexOf('/'))}/${index}`;
}
