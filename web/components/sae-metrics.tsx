import { graphql } from '@/lib/gql';
import type { SaeMetricsFragment } from '@/lib/gql/graphql';
import { formatValue } from '@/lib/units';

/** An SAE's held-out metrics, as the tables of SAEs show them. */
export const SAE_METRICS = graphql(`
  fragment SaeMetrics on EvalMetrics {
    l0
    mse
    fvu
    explainedVariance
    explainedVarianceSaelens
    cosine
    deadFraction
    denseFraction
    ceLossRecovered
    klDivergence
  }
`);

const COLUMNS: [keyof SaeMetricsFragment, string][] = [
  ['l0', 'L0'],
  ['explainedVariance', 'explained var. (centred)'],
  ['explainedVarianceSaelens', 'explained var. (SAELens)'],
  ['fvu', 'FVU'],
  ['mse', 'MSE'],
  ['cosine', 'cosine'],
  ['deadFraction', 'dead'],
  ['denseFraction', 'dense'],
  ['ceLossRecovered', 'CE recovered'],
  ['klDivergence', 'KL'],
];

/** Header cells for a table of SAEs with their held-out metrics. */
export function MetricsHeader() {
  return (
    <>
      {COLUMNS.map(([key, label]) => (
        <th key={key}>{label}</th>
      ))}
    </>
  );
}

/** One SAE's metrics as cells ("–" where never evaluated or not applicable). */
export function MetricsCells(props: { metrics: SaeMetricsFragment | null }) {
  return (
    <>
      {COLUMNS.map(([key]) => {
        const value = props.metrics?.[key];
        return (
          <td key={key} data-metric={key} data-value={value ?? ''}>
            {value === null || value === undefined ? '–' : formatValue(value)}
          </td>
        );
      })}
    </>
  );
}
