import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type SpawnedEmbeddedPostgres, spawnEmbeddedPostgres } from '@loupe/common/db';
import { FIXTURES } from '../fixtures/index.js';
import { convertedFixture } from './model.js';
import { freePort } from './process.js';

/** A scratch folder whose data dir serves the tiny model as `tiny`, and an embedded Postgres under it. */
export interface ServedTiny {
  scratch: string;
  dataDir: string;
  servedModel: string;
  pg: SpawnedEmbeddedPostgres;
  pgPort: number;
}

export async function serveTiny(prefix: string): Promise<ServedTiny> {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const dataDir = path.join(scratch, 'data');
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  const servedModel = path.join(dataDir, 'models', 'tiny');
  await fs.mkdir(path.dirname(servedModel), { recursive: true });
  await fs.rename(modelDir, servedModel);
  const pgPort = await freePort();
  const pg = await spawnEmbeddedPostgres({ dataDir: path.join(scratch, 'pg'), port: pgPort });
  return { scratch, dataDir, servedModel, pg, pgPort };
}
