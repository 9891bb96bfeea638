import type { Sql } from '@loupe/common/db';
import type { UnitRecords } from '../records/records.js';
import type { RecordSource } from '../units/record-source.js';
import { getPublishedNeuron, publishedUnitRecords } from './published-store.js';

/**
 * Records of imported units from what was published with them, so re-scoring an imported neuron
 * simulates exactly the windows OpenAI scored on; any other unit's records come from `fallback`.
 */
export class PublishedRecordSource implements RecordSource {
  constructor(
    private readonly sql: () => Promise<Sql>,
    private readonly fallback: RecordSource,
  ) {}

  async records(unit: string): Promise<UnitRecords> {
    const published = await getPublishedNeuron(await this.sql(), unit);
    if (published?.records) return publishedUnitRecords(published.records);
    return this.fallback.records(unit);
  }
}
