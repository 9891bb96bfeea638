import { UserInputError } from '@loupe/common';
import type { UsageMeter } from '../llm/types.js';
import { splitForScoring, type UnitRecords } from '../records/records.js';
import { type ScoreReport, scoreExplanation } from '../score/score.js';
import type { Simulator } from '../simulate/types.js';
import type { Explainer } from './types.js';

export interface ExplainUnitOptions {
  explainer: Explainer;
  simulator: Simulator;
  candidates?: number;
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
 * OpenAI's procedure: explain from half the top records (interleaved), choose the best candidate by
 * simulation on those same explanation records (plus the matching random half), then report its score
 * on the held-out half, top and random 1:1, so selection never sees the windows it is scored on.
 */
export async function explainUnit(
  records: UnitRecords,
  options: ExplainUnitOptions,
): Promise<ExplainUnitResult> {
  if (records.top.length < 2)
    throw new UserInputError(
      `explaining needs at least 2 top records (half explain, half score), got ${records.top.length}`,
    );
  const { explain, score } = splitForScoring(records);
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
          await scoreExplanation(explanation, explain, options.simulator, {
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
  });
  return {
    explanation: best.explanation,
    explainer_model: options.explainer.model,
    candidates,
    score: report,
  };
}
