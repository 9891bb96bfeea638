import type { UsageMeter } from '../llm/types.js';
import type { UnitRecords } from '../records/records.js';

/** Writes candidate explanations of a unit from its records. */
export interface Explainer {
  /** Model name for provenance ("baseline-statistical" for the built-in one). */
  readonly model: string;
  explain(records: UnitRecords, candidates: number, meter?: UsageMeter): Promise<string[]>;
}
