import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES } from '../fixtures/index.js';
import { databaseEnv, startTestDatabase, type TestDatabase } from './database.js';
import { convertedFixture } from './model.js';

/**
 * A scratch folder whose data dir serves the tiny model as `tiny`, and the suite's database
 * (startTestDatabase: an embedded Postgres of its own, or a fresh database on LOUPE_TEST_DATABASE_URL).
 */
export interface ServedTiny {
  scratch: string;
  dataDir: string;
  servedModel: string;
  db: TestDatabase;
  /** the environment that points service processes and `loupe` commands at `db` */
  dbEnv: Record<string, string>;
}

export async function serveTiny(prefix: string): Promise<ServedTiny> {
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const dataDir = path.join(scratch, 'data');
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  const servedModel = path.join(dataDir, 'models', 'tiny');
  await fs.mkdir(path.dirname(servedModel), { recursive: true });
  await fs.rename(modelDir, servedModel);
  const db = await startTestDatabase();
  return { scratch, dataDir, servedModel, db, dbEnv: databaseEnv(db) };
}
