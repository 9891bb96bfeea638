import { UserInputError } from '@loupe/common';
import type { UsageMeter } from '../llm/types.js';
import { type RecordSplit, splitRecords, type UnitRecords } from '../records/records.js';
import { type ScoreReport, scoreExplanation } from '../score/score.js';
import type { Simulator } from '../simulate/types.js';
import type { Explainer } from './types.js';

export interface ExplainUnitOptions {
  explainer: Explainer;
  simulator: Simulator;
  candidates?: number;
  /** How records divide between explaining, choosing and scoring; unnamed = OpenAI's (see splitRecords). */
  split?: RecordSplit;
  seed?: number;
  bootstrapSamples?: number;
  meter?: UsageMeter;
}

export interface ExplainUnitResult {
  explanation: string;
  explainer_model: string;
  /** Every candidate with the score that chose between them (on the explanation records). */
  candidates: { explanation: string; selection_score: number | null }[];
  /** The chosen explanation scored on held-out records. */
  score: ScoreReport;
}

/**
 * OpenAI's procedure: explain from the train split of the top records, choose the best candidate by
 * simulation on the selection records (calibration under OpenAI's split, the explanation half under
 * the halves split), then report its score on the held-out records (valid), top and random 1:1, so
 * selection never sees the windows it is scored on. The score's provenance names the split.
 */
export async function explainUnit(
  records: UnitRecords,
  options: ExplainUnitOptions,
): Promise<ExplainUnitResult> {
  const { explain, select, score, provenance: split } = splitRecords(records, options.split);
  const texts = [
    ...new Set(await options.explainer.explain(explain, options.candidates ?? 1, options.meter)),
  ];
  if (texts.length === 0)
    throw new UserInputError(`the explainer (${options.explainer.model}) returned no usable explanation`);
  let candidates = texts.map((explanation) => ({ explanation, selection_score: null as number | null }));
  if (texts.length > 1) {
    candidates = await Promise.all(
      texts.map(async (explanation) => ({
        explanation,
        selection_score: (
          await scoreExplanation(explanation, select, options.simulator, {
            bootstrapSamples: 0,
            meter: options.meter,
          })
        ).score,
      })),
    );
  }
  const best = candidates.reduce((a, b) => ((b.selection_score ?? -2) > (a.selection_score ?? -2) ? b : a));
  const report = await scoreExplanation(best.explanation, score, options.simulator, {
    seed: options.seed,
    bootstrapSamples: options.bootstrapSamples,
    explainerModel: options.explainer.model,
    meter: options.meter,
    split,
  });
  return {
    explanation: best.explanation,
    explainer_model: options.explainer.model,
    candidates,
    score: report,
  };
}
