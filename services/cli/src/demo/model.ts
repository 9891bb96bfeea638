import fs from 'node:fs/promises';
import path from 'node:path';
import { type LoupeConfig, modelsDir } from '@loupe/common';
import {
  convertCheckpoint,
  ensureFixtureCheckpoint,
  FIXTURES,
  MANIFEST_FILE,
  OFFLINE_MODEL_NAME,
} from '@loupe/model';

/**
 * Which model `loupe serve` serves, and how it gets there: the configured one when it is present (or a
 * path), else `loupe model pull` of it when the hub answers, else (offline) the seeded fixture model,
 * made here and served under its own name so a later start with a network still pulls the real one.
 */
export interface ModelChoice {
  /** the name the capture service serves by default */
  name: string;
  /** the seeded fixture, because the hub could not be reached */
  offline: boolean;
  /** what has to happen before the model can be used; none when it is already there */
  fetch: 'none' | 'pull' | 'fixture';
  /** why, for the log */
  reason: string;
}

/** How long the hub gets to answer before the machine counts as offline. */
const HUB_PROBE_MS = 3000;

export function modelDir(config: Pick<LoupeConfig, 'dataDir'>, name: string): string {
  return name.includes('/') ? path.resolve(name) : path.join(modelsDir(config), name);
}

export async function hasModel(config: Pick<LoupeConfig, 'dataDir'>, name: string): Promise<boolean> {
  return fs.access(path.join(modelDir(config, name), MANIFEST_FILE)).then(
    () => true,
    () => false,
  );
}

/** True when the hub answers HTTP at all (any status); a refused, unresolvable or silent host is offline. */
export async function hubReachable(endpoint: string, timeoutMs = HUB_PROBE_MS): Promise<boolean> {
  try {
    const response = await fetch(endpoint, { method: 'HEAD', signal: AbortSignal.timeout(timeoutMs) });
    await response.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

export async function chooseModel(
  config: Pick<LoupeConfig, 'dataDir' | 'model' | 'hfEndpoint'>,
): Promise<ModelChoice> {
  const configured = config.model;
  if (await hasModel(config, configured))
    return { name: configured, offline: false, fetch: 'none', reason: 'present' };
  if (configured.includes('/'))
    return { name: configured, offline: false, fetch: 'none', reason: `no model at ${configured}` };
  if (await hubReachable(config.hfEndpoint))
    return {
      name: configured,
      offline: false,
      fetch: 'pull',
      reason: `pulling ${configured} from ${config.hfEndpoint}`,
    };
  const reason = `${config.hfEndpoint} cannot be reached, so this is ${OFFLINE_MODEL_NAME}: a small GPT-2 with random weights and the real vocabulary, made on this machine`;
  const fetch = (await hasModel(config, OFFLINE_MODEL_NAME)) ? 'none' : 'fixture';
  return { name: OFFLINE_MODEL_NAME, offline: true, fetch, reason };
}

/**
 * Makes the offline model: the seeded `tiny` checkpoint (deterministic: the same bytes on every
 * machine) converted into $LOUPE_DATA_DIR/models/loupe-tiny.
 */
export async function makeOfflineModel(config: Pick<LoupeConfig, 'dataDir'>): Promise<string> {
  const checkpoint = await ensureFixtureCheckpoint(FIXTURES.tiny, path.join(config.dataDir, 'fixtures'));
  const out = modelDir(config, OFFLINE_MODEL_NAME);
  // conversion writes aside and renames, so an interrupted one leaves no half model behind
  await convertCheckpoint(checkpoint, out, { name: OFFLINE_MODEL_NAME });
  return out;
}
