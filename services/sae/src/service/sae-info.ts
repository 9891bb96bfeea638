import type { EvalMetrics, SaeInfo } from '@loupe/common/grpc';
import type { ReconstructionEval } from '../eval/reconstruction-eval.js';
import type { SplicedLoss } from '../eval/spliced-loss.js';
import type { SaeRow } from '../store/sae-store.js';

/** A library row as the SaeInfo message; metrics only when a recorded evaluation exists. */
export function toSaeInfo(record: SaeRow, hasFeatureRecords: boolean): SaeInfo {
  const cfg = record.cfg;
  const kwargs = cfg.activation_fn_kwargs as Record<string, unknown> | undefined;
  const k = Number(cfg.k ?? kwargs?.k ?? 0);
  const metrics = record.metrics ? fromStoredMetrics(record.metrics) : undefined;
  return {
    id: record.id,
    model: record.model,
    hook: record.hook,
    architecture: record.architecture,
    trainedAs: record.trainedAs ?? '',
    dIn: record.dIn,
    dSae: record.dSae,
    k: Number.isInteger(k) ? k : 0,
    cfgJson: JSON.stringify(cfg),
    ...(metrics ? { metrics } : {}),
    hasFeatureRecords,
    createdAt: new Date(record.createdAt).toISOString(),
  };
}

/** The EvalMetrics message of a reconstruction evaluation and, when texts were spliced, the loss. */
export function toEvalMetrics(
  reconstruction: ReconstructionEval | null,
  spliced: SplicedLoss | null,
): EvalMetrics {
  const r = reconstruction;
  return {
    vectors: r?.vectors ?? 0,
    l0: r?.l0 ?? 0,
    mse: r?.mse ?? 0,
    // NaN when the vectors have no variance (FVU undefined); a double carries it, the gateway says why
    fvu: r?.fvu ?? 0,
    explainedVariance: r?.explainedVariance ?? 0,
    explainedVarianceSaelens: r?.explainedVarianceSaelens ?? 0,
    cosine: r?.cosine ?? 0,
    deadFraction: r?.deadFraction ?? 0,
    denseFraction: r?.denseFraction ?? 0,
    activityWindowTokens: r?.activityWindowTokens ?? 0,
    ...(spliced
      ? {
          ceClean: spliced.cleanCe,
          ceSpliced: spliced.splicedCe,
          ceZeroAblated: spliced.zeroAblatedCe,
          // null when zero ablation costs nothing: there is no loss to recover
          ...(spliced.ceRecovered === null ? {} : { ceLossRecovered: spliced.ceRecovered }),
          klDivergence: spliced.kl,
        }
      : {}),
  };
}

const METRIC_KEYS: (keyof EvalMetrics)[] = [
  'vectors',
  'l0',
  'mse',
  'fvu',
  'explainedVariance',
  'explainedVarianceSaelens',
  'cosine',
  'deadFraction',
  'denseFraction',
  'activityWindowTokens',
  'ceClean',
  'ceSpliced',
  'ceZeroAblated',
  'ceLossRecovered',
  'klDivergence',
];

/** The stored `metrics` jsonb, written in camelCase (EvalMetrics' fields) or snake_case. */
export function fromStoredMetrics(stored: Record<string, unknown>): EvalMetrics {
  const out: Record<string, number> = {};
  for (const key of METRIC_KEYS) {
    const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    const value = stored[key] ?? stored[snake];
    if (typeof value === 'number' && Number.isFinite(value)) out[key] = value;
  }
  return out as EvalMetrics;
}
