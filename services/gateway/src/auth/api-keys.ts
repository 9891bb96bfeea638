import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
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

/**
 * The key's id and name when it exists and is not revoked; records when it was last used. The lookup
 * is by sha256, so how long the index search takes says something about the hash of the guess, never
 * about the stored key (finding a key from hash prefixes means inverting sha256); the found hash is
 * still compared with timingSafeEqual, so no byte-by-byte string comparison touches a secret.
 */
export async function verifyApiKey(sql: Sql, key: string): Promise<{ id: string; name: string } | null> {
  const presented = hashApiKey(key);
  const rows = await sql<{ id: string; name: string; key_sha256: string }[]>`
    UPDATE api_keys SET last_used_at = now()
    WHERE key_sha256 = ${presented} AND revoked_at IS NULL
    RETURNING id, name, key_sha256`;
  const row = rows[0];
  if (!row || !timingSafeEqual(Buffer.from(row.key_sha256, 'hex'), Buffer.from(presented, 'hex')))
    return null;
  return { id: row.id, name: row.name };
}
