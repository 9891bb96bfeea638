import { graphql } from '@/lib/gql';
import type { SteeringMode, SteerQuery, SteerQueryVariables } from '@/lib/gql/graphql';

/**
 * A steering setup and its URL form, so a setup is shared by its link: /steer?prompt=…&seed=7&
 * unit=tiny/sae/17&strength=40&mode=ADD (one unit/strength/mode triple per edit, in order). The same
 * names are the playground form's fields, so the form submits to this URL without JavaScript.
 */
export const MODES = ['ADD', 'CLAMP', 'ABLATE'] as const satisfies readonly SteeringMode[];
export type Mode = (typeof MODES)[number];

export interface SteerEdit {
  unit: string;
  strength: number;
  mode: Mode;
}

export interface SteerSetup {
  prompt: string;
  edits: SteerEdit[];
  /** absent: the gateway picks one and says which */
  seed?: number;
  maxTokens: number;
  temperature: number;
  topK: number;
}

export const DEFAULT_SETUP: SteerSetup = {
  prompt: '',
  edits: [{ unit: '', strength: 10, mode: 'ADD' }],
  maxTokens: 32,
  temperature: 1,
  topK: 0,
};

type Params = Record<string, string | string[] | undefined>;

function all(params: Params, key: string): string[] {
  const value = params[key];
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function number(value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : fallback;
}

/** The setup a URL's query describes; missing or unreadable fields take their defaults. */
export function parseSetup(params: Params): SteerSetup {
  const units = all(params, 'unit');
  const strengths = all(params, 'strength');
  const modes = all(params, 'mode');
  const edits = units
    .map((unit, i) => ({
      unit: unit.trim(),
      strength: number(strengths[i], 1),
      mode: ((MODES as readonly string[]).includes(modes[i] ?? '') ? modes[i] : 'ADD') as Mode,
    }))
    .filter((e) => e.unit !== '');
  const seed = all(params, 'seed')[0];
  return {
    prompt: all(params, 'prompt')[0] ?? '',
    edits: edits.length > 0 ? edits : DEFAULT_SETUP.edits,
    seed: seed === undefined || seed.trim() === '' ? undefined : Math.trunc(number(seed, 0)),
    maxTokens: Math.trunc(number(all(params, 'maxTokens')[0], DEFAULT_SETUP.maxTokens)),
    temperature: number(all(params, 'temperature')[0], DEFAULT_SETUP.temperature),
    topK: Math.trunc(number(all(params, 'topK')[0], DEFAULT_SETUP.topK)),
  };
}

/** The URL query of a setup (edits without a unit are left out). */
export function setupQuery(setup: SteerSetup): string {
  const query = new URLSearchParams();
  query.set('prompt', setup.prompt);
  for (const edit of setup.edits) {
    if (edit.unit.trim() === '') continue;
    query.append('unit', edit.unit.trim());
    query.append('strength', String(edit.strength));
    query.append('mode', edit.mode);
  }
  if (setup.seed !== undefined) query.set('seed', String(setup.seed));
  query.set('maxTokens', String(setup.maxTokens));
  query.set('temperature', String(setup.temperature));
  query.set('topK', String(setup.topK));
  return query.toString();
}

/** The steer query's variables for a setup. */
export function steerVariables(setup: SteerSetup): SteerQueryVariables {
  return {
    prompt: setup.prompt,
    edits: setup.edits
      .filter((e) => e.unit.trim() !== '')
      .map((e) => ({ unit: e.unit.trim(), strength: e.strength, mode: e.mode })),
    options: {
      maxTokens: setup.maxTokens,
      temperature: setup.temperature,
      topK: setup.topK,
      ...(setup.seed === undefined ? {} : { seed: setup.seed }),
    },
  };
}

export const STEER = graphql(`
  query Steer($prompt: String!, $edits: [SteeringEdit!]!, $options: SteerOptions) {
    steer(prompt: $prompt, edits: $edits, options: $options) {
      prompt
      seed
      steered {
        text
      }
      unsteered {
        text
      }
    }
  }
`);

export type SteerResultData = SteerQuery['steer'];
