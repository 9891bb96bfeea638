import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseUnitId, UserInputError } from '@loupe/common';
import { parseUnitRecords, type UnitRecords } from '../records/records.js';
import type { RecordSource } from './record-source.js';

/**
 * Records from files laid out like unit ids: `<dir>/<model>/<hook or sae-id>/<index>.json`, each in the
 * records format of `loupe score`. For scoring units offline, from records exported or made elsewhere.
 */
export class FileRecordSource implements RecordSource {
  constructor(private readonly dir: string) {}

  async records(unit: string): Promise<UnitRecords> {
    const ref = parseUnitId(unit);
    const middle = ref.kind === 'neuron' ? ref.hook : ref.saeId;
    const file = path.join(this.dir, ref.model, middle, `${ref.index}.json`);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      throw new UserInputError(`no records for ${unit}: expected ${file}`, 'NOT_FOUND');
    }
    try {
      return parseUnitRecords(JSON.parse(text), file);
    } catch (error) {
      if (error instanceof UserInputError) throw error;
      throw new UserInputError(`${file} is not JSON: ${(error as Error).message}`);
    }
  }
}
