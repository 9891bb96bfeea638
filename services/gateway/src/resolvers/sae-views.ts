import type { EvalMetrics__Output, FeatureStatsRow__Output, SaeInfo__Output } from '@loupe/common/grpc';
import { featureId } from '../units/unit-id.js';

/** An SAE as the schema's Sae type reads it: "not given" is null, not 0 or "". */
export interface SaeView {
  id: string;
  model: string;
  hook: string;
  architecture: string;
  trainedAs: string | null;
  dIn: number;
  dSae: number;
  k: number | null;
  metrics: ReturnType<typeof metricsView> | null;
  hasFeatureRecords: boolean;
  createdAt: string;
}

/** int64 counts as Floats; FVU is undefined (null) when the vectors had no variance. */
function metricsView(m: EvalMetrics__Output) {
  const optional = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? null : v);
  return {
    vectors: Number(m.vectors),
    l0: m.l0,
    mse: m.mse,
    fvu: optional(m.fvu),
    explainedVariance: m.explainedVariance,
    explainedVarianceSaelens: optional(m.explainedVarianceSaelens),
    cosine: m.cosine,
    deadFraction: m.deadFraction,
    denseFraction: m.denseFraction,
    activityWindowTokens: Number(m.activityWindowTokens),
    ceClean: optional(m.ceClean),
    ceSpliced: optional(m.ceSpliced),
    ceZeroAblated: optional(m.ceZeroAblated),
    ceLossRecovered: optional(m.ceLossRecovered),
    klDivergence: optional(m.klDivergence),
  };
}

export function saeView(info: SaeInfo__Output): SaeView {
  return {
    id: info.id,
    model: info.model,
    hook: info.hook,
    architecture: info.architecture,
    trainedAs: info.trainedAs || null,
    dIn: info.dIn,
    dSae: info.dSae,
    k: info.k || null,
    metrics: info.metrics ? metricsView(info.metrics) : null,
    hasFeatureRecords: info.hasFeatureRecords,
    createdAt: info.createdAt,
  };
}

/**
 * An SAE feature as a Unit (Feature). Its statistics and logit tokens come from FeatureStats, its record windows
 * from FeatureRecords, each through the request's DataLoader, fetched only when a field asks.
 */
export interface FeatureView {
  __typename: 'Feature';
  id: string;
  model: string;
  saeId: string;
  index: number;
  saeInfo: SaeInfo__Output;
  /** statistics from a ListFeatures row (a listed feature needs no FeatureStats for them) */
  listed?: FeatureStatsRow__Output & { tokens: number };
}

export function featureView(sae: SaeInfo__Output, index: number): FeatureView {
  return {
    __typename: 'Feature',
    id: featureId(sae.model, sae.id, index),
    model: sae.model,
    saeId: sae.id,
    index,
    saeInfo: sae,
  };
}
