import Link from 'next/link';
import { graphql } from '@/lib/gql';
import type { HookUnitsQuery, SaeFeaturesQuery, UnitOrder } from '@/lib/gql/graphql';
import { formatValue, unitPath } from '@/lib/units';

export const ORDERS = [
  'MAX_ACTIVATION',
  'FREQUENCY',
  'SCORE',
  'INDEX',
] as const satisfies readonly UnitOrder[];
export type Order = (typeof ORDERS)[number];

export function parseOrder(value: string | undefined): Order {
  return (ORDERS as readonly string[]).includes(value ?? '') ? (value as Order) : 'MAX_ACTIVATION';
}

/** The unit fields both hookUnits and saeFeatures are asked for, each edge's node. */
export const UNIT_LIST_UNIT = graphql(`
  fragment UnitListUnit on Unit {
    id
    index
    stats {
      maxActivation
      fractionNonzero
    }
    explanations(first: 1) {
      edges {
        node {
          text
        }
      }
    }
  }
`);

/** A page of a hook's neurons (hookUnits) or of an SAE's features (saeFeatures). */
export type UnitListConnection = HookUnitsQuery['hookUnits'] | SaeFeaturesQuery['saeFeatures'];

const LABELS: Record<Order, string> = {
  MAX_ACTIVATION: 'max activation',
  FREQUENCY: 'frequency',
  SCORE: 'score',
  INDEX: 'index',
};

/**
 * A page of a hook's neurons or an SAE's features with their statistics, best score and best
 * explanation; the order is a link per column (works without JavaScript), pages follow the cursor.
 */
export function UnitList(props: {
  edges: UnitListConnection['edges'];
  totalCount: number;
  order: Order;
  endCursor: string | null;
  hasNextPage: boolean;
}) {
  return (
    <>
      <nav className="tabs" aria-label="order">
        {ORDERS.map((o) => (
          <Link key={o} href={`?order=${o}`} aria-current={o === props.order ? 'page' : undefined}>
            {LABELS[o]}
          </Link>
        ))}
      </nav>
      <p className="muted">{props.totalCount.toLocaleString('en')} units</p>
      <div className="scroll">
        <table className="unit-list">
          <thead>
            <tr>
              <th>unit</th>
              <th>max</th>
              <th>frequency</th>
              <th>score</th>
              <th>best explanation</th>
            </tr>
          </thead>
          <tbody>
            {props.edges.map(({ node, score }) => (
              <tr key={node.id} data-unit={node.id} data-score={score ?? ''}>
                <td>
                  <Link href={unitPath(node.id)}>{node.index}</Link>
                </td>
                <td>{formatValue(node.stats.maxActivation)}</td>
                <td>{(100 * node.stats.fractionNonzero).toFixed(2)}%</td>
                <td>{score === null ? '–' : score.toFixed(3)}</td>
                <td className="explanation-text">{node.explanations.edges[0]?.node.text ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {props.hasNextPage && props.endCursor ? (
        <p>
          <Link href={`?order=${props.order}&after=${encodeURIComponent(props.endCursor)}`}>next page →</Link>
        </p>
      ) : null}
    </>
  );
}
