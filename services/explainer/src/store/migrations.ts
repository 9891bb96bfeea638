import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The explainer schema's SQL migrations, found from this module whether it runs from src/ or dist/. */
export const EXPLAINER_MIGRATIONS_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../migrations',
);
export const EXPLAINER_SCHEMA = 'explainer';
