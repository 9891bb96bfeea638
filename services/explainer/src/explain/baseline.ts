import type { UnitRecords } from '../records/records.js';
import { BASELINE_MODEL, baselineExplanation } from './baseline-explainer.js';
import type { Explainer } from './types.js';

/** The statistical explainer behind the Explainer interface; always one candidate (it is deterministic). */
export class BaselineExplainer implements Explainer {
  readonly model = BASELINE_MODEL;

  async explain(records: UnitRecords): Promise<string[]> {
    return [baselineExplanation(records)];
  }
}
