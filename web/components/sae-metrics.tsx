import { formatValue } from '@/lib/units';

export interface EvalMetricsData {
  l0: number;
  mse: number;
  fvu: number | null;
  explainedVariance: number;
  cosine: number;
  deadFraction: number;
  denseFraction: number;
  ceLossRecovered: number | null;
  klDivergence: number | null;
}

export const EVAL_METRICS_FIELDS =
  'l0 mse fvu explainedVariance cosine deadFraction denseFraction ceLossRecovered klDivergence';

const COLUMNS: [keyof EvalMetricsData, string][] = [
  ['l0', 'L0'],
  ['explainedVariance', 'explained var.'],
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
export function MetricsCells(props: { metrics: EvalMetricsData | null }) {
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
