import { explainUnit } from '../explain/explain-unit.js';
import type { Explainer } from '../explain/types.js';
import type { UsageMeter } from '../llm/types.js';
import { heldOutRecords, splitRecords, type UnitRecords } from '../records/records.js';
import { classificationScore } from '../scorers/classify.js';
import type { Judge } from '../scorers/judge.js';
import type { Simulator } from '../simulate/types.js';
import { fromClassificationReport, fromScoreReport, type ScoredExplanation } from '../store/explanations.js';
import type { JobMethod } from './job-store.js';

export interface UnitModels {
  explainer: Explainer;
  simulator: Simulator;
  judge: Judge;
}

/**
 * Explains one unit and scores the explanation by the job's method, on held-out records in every case
 * (the cheaper scorers too), with the unit's LLM usage counted in `meter`.
 */
export async function scoreUnit(
  unit: string,
  records: UnitRecords,
  method: JobMethod,
  models: UnitModels,
  options: { seed: number; meter: UsageMeter },
): Promise<ScoredExplanation> {
  if (method === 'simulation') {
    const result = await explainUnit(records, { ...models, seed: options.seed, meter: options.meter });
    return fromScoreReport(unit, result.score);
  }
  // detection and fuzzing sample their own examples (as delphi does) from every record the explainer
  // did not see, not only the simulation's valid split
  const { explain } = splitRecords(records);
  const { records: held, provenance } = heldOutRecords(records);
  const [explanation] = await models.explainer.explain(explain, 1, options.meter);
  if (!explanation) throw new Error(`the explainer (${models.explainer.model}) returned no explanation`);
  const report = await classificationScore(method, explanation, held, {
    judge: models.judge,
    seed: options.seed,
    meter: options.meter,
    split: provenance,
  });
  return fromClassificationReport(unit, report, models.explainer.model);
}
