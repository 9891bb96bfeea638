import { createHash, randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Sql } from '@loupe/common/db';

/** The gateway's own schema: it owns no data except API keys. */
export const GATEWAY_SCHEMA = 'gateway';
export const GATEWAY_MIGRATIONS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../migrations',
);

const KEY_PREFIX = 'loupe_';

export interface CreatedApiKey {
  id: string;
  name: string;
  /** the key itself: shown once, never stored */
  key: string;
}

/** sha256 of the key, hex: what the table stores and what a presented key is looked up by. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Makes a new random key (256 bits) and stores only its hash. */
export async function createApiKey(sql: Sql, name: string): Promise<CreatedApiKey> {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  const id = randomUUID();
  await sql`INSERT INTO api_keys (id, name, key_sha256, prefix)
            VALUES (${id}, ${name}, ${hashApiKey(key)}, ${key.slice(0, KEY_PREFIX.length + 6)})`;
  return { id, name, key };
}

/** The key's id and name when it exists and is not revoked; records when it was last used. */
export async function verifyApiKey(sql: Sql, key: string): Promise<{ id: string; name: string } | null> {
  const rows = await sql<{ id: string; name: string }[]>`
    UPDATE api_keys SET last_used_at = now()
    WHERE key_sha256 = ${hashApiKey(key)} AND revoked_at IS NULL
    RETURNING id, name`;
  return rows[0] ?? null;
}
