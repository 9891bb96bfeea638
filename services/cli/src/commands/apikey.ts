import { loadConfig, UserInputError } from '@loupe/common';
import { openDatabase } from '@loupe/common/db';
import { createApiKey, GATEWAY_MIGRATIONS_DIR, GATEWAY_SCHEMA } from '@loupe/gateway';
import { printJson } from '../run-command.js';

/** `loupe apikey create`: stores the hash of a new key and prints the key, this once only. */
export async function create(options: { name?: string }): Promise<void> {
  const name = options.name ?? 'default';
  if (name.trim().length === 0 || name.length > 200)
    throw new UserInputError('--name must be 1-200 characters');
  const db = await openDatabase(loadConfig(), {
    schema: GATEWAY_SCHEMA,
    migrationsDir: GATEWAY_MIGRATIONS_DIR,
    applicationName: 'loupe-cli',
  });
  try {
    const created = await createApiKey(db.sql, name);
    process.stderr.write('loupe: keep this key now; only its hash is stored, it cannot be shown again\n');
    await printJson(created);
  } finally {
    await db.close();
  }
}
