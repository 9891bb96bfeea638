import { gql } from '@apollo/client';
import Link from 'next/link';
import { ErrorBox } from '@/components/error-box';
import { Histogram } from '@/components/histogram';
import { RecordList, type RecordWindowData } from '@/components/record-list';
import { query } from '@/lib/apollo';
import { describeError } from '@/lib/graphql-errors';
import { formatValue, unitIdFromSegments, unitPath } from '@/lib/units';

export const dynamic = 'force-dynamic';

const TABS = ['top', 'random', 'quantiles'] as const;
type Tab = (typeof TABS)[number];

interface WindowConnection {
  totalCount: number;
  edges: { node: RecordWindowData }[];
}

interface UnitData {
  unit: {
    __typename: string;
    id: string;
    model: string;
    index: number;
    hook?: string;
    layer?: number;
    captureJobId?: string;
    stats: {
      maxActivation: number;
      minActivation: number;
      meanActivation: number;
      fractionNonzero: number;
      tokens: number;
    };
    histogram: { min: number; max: number; counts: number[] };
    top: WindowConnection;
    random: WindowConnection;
    quantiles: { from: number; to: number; windows: WindowConnection }[];
  };
}

const UNIT = gql`
  fragment WindowFields on RecordWindow {
    window
    maxValue
    values
    tokens {
      id
      text
    }
  }
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
`;

export default async function UnitPage(props: {
  params: Promise<{ id: string[] }>;
  searchParams: Promise<{ tab?: string }>;
}) {
  const { id: segments } = await props.params;
  const { tab: requested } = await props.searchParams;
  const tab: Tab = (TABS as readonly string[]).includes(requested ?? '') ? (requested as Tab) : 'top';
  const id = unitIdFromSegments(segments);
  let data: UnitData | undefined;
  try {
    data = (await query<UnitData>({ query: UNIT, variables: { id } })).data;
  } catch (error) {
    return (
      <>
        <h1>{id}</h1>
        <ErrorBox {...describeError(error)} />
      </>
    );
  }
  if (!data) return null;
  const { unit } = data;
  const scale = Math.max(Math.abs(unit.stats.maxActivation), Math.abs(unit.stats.minActivation));
  return (
    <>
      <h1>
        {unit.__typename === 'Neuron' ? 'Neuron' : 'Feature'} {unit.index}
      </h1>
      <p className="muted">
        <code>{unit.id}</code>
        {unit.captureJobId ? ` · records from capture job ${unit.captureJobId}` : null}
      </p>
      <p>
        {unit.index > 0 ? (
          <Link href={unitPath(siblingId(unit.id, unit.index - 1))}>← {unit.index - 1}</Link>
        ) : null}{' '}
        <Link href={unitPath(siblingId(unit.id, unit.index + 1))}>{unit.index + 1} →</Link>
      </p>
      <dl className="stats">
        <Stat label="max activation" value={formatValue(unit.stats.maxActivation)} />
        <Stat label="min activation" value={formatValue(unit.stats.minActivation)} />
        <Stat label="mean activation" value={formatValue(unit.stats.meanActivation)} />
        <Stat label="fraction non-zero" value={`${(100 * unit.stats.fractionNonzero).toFixed(2)}%`} />
        <Stat label="tokens" value={unit.stats.tokens.toLocaleString('en')} />
      </dl>
      <Histogram counts={unit.histogram.counts} min={unit.histogram.min} max={unit.histogram.max} />
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
