import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The sae schema's SQL migrations, found from this module whether it runs from src/ or dist/. */
export const SAE_MIGRATIONS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../migrations',
);
export const SAE_SCHEMA = 'sae';
