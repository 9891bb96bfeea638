import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { UserInputError } from '@loupe/common';
import { MANIFEST_FILE } from './manifest.js';

/**
 * Where a converted model lives, from what a user typed: a model folder (one with a manifest), or the
 * name of one under `modelsDir` (`$LOUPE_DATA_DIR/models`, as LOUPE_MODEL names them).
 */
export function resolveModelDir(modelsDir: string, given: string): string {
  if (given.trim() === '') throw new UserInputError('no model given: name one, e.g. --model gpt2');
  if (existsSync(path.join(given, MANIFEST_FILE))) return path.resolve(given);
  const named = path.join(modelsDir, given);
  if (!given.includes('/') && existsSync(path.join(named, MANIFEST_FILE))) return named;
  const known = (() => {
    try {
      return readdirSync(modelsDir).filter((name) => existsSync(path.join(modelsDir, name, MANIFEST_FILE)));
    } catch {
      return [];
    }
  })();
  throw new UserInputError(
    `no model "${given}": not a converted model folder (no manifest.json there), and ${modelsDir} has ${
      known.length ? `only ${known.sort().join(', ')}` : 'no models yet'
    }; get one with: loupe model pull gpt2 (or loupe model convert)`,
    'UNKNOWN_MODEL',
  );
}
