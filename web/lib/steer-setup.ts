import { graphql } from '@/lib/gql';
import type { SteeringMode, SteerPickFragment, SteerQuery, SteerQueryVariables } from '@/lib/gql/graphql';

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

/** The SAEs steering can use (those on a blocks.{L}.hook_resid_pre) and the demo workspace's. */
export const STEER_START = graphql(`
  query SteerStart {
    workspace {
      sae {
        id
      }
    }
    saes(first: 100) {
      edges {
        node {
          id
          model
          hook
        }
      }
    }
  }
`);

/** A feature to pick: its id, index and best explanation. */
export const STEER_PICK = graphql(`
  fragment SteerPick on Unit {
    id
    index
    explanations(first: 1) {
      edges {
        node {
          text
        }
      }
    }
  }
`);

/** An SAE's best-scored features, offered before anything is searched. */
export const FEATURE_SUGGESTIONS = graphql(`
  query SteerSuggestions($saeId: ID!, $first: Int) {
    saeFeatures(saeId: $saeId, orderBy: SCORE, first: $first) {
      edges {
        score
        node {
          ...SteerPick
        }
      }
    }
  }
`);

/** Features of one SAE whose explanations match a text (full-text search, by the id prefix). */
export const FEATURE_SEARCH = graphql(`
  query SteerFeatureSearch($query: String!, $prefix: String, $first: Int) {
    searchExplanations(query: $query, unitPrefix: $prefix, first: $first) {
      edges {
        relevance
        node {
          ...SteerPick
        }
        explanation {
          text
        }
      }
    }
  }
`);

/** Features offered before anything is searched. */
export const SUGGESTED_FEATURES = 8;

/** A feature the picker offers, with the explanation that describes (or matched) it. */
export interface FeatureChoice {
  id: string;
  index: number;
  explanation: string | null;
}

export function toPicks(units: SteerPickFragment[]): FeatureChoice[] {
  return units.map((u) => ({
    id: u.id,
    index: u.index,
    explanation: u.explanations.edges[0]?.node.text ?? null,
  }));
}

/** Steering writes at blocks.{L}.hook_resid_pre: SAEs elsewhere cannot steer. */
export function steerable(sae: { hook: string }): boolean {
  return /^blocks\.\d+\.hook_resid_pre$/.test(sae.hook);
}

/**
 * The SAE to pick features from: the one the setup's first feature belongs to, else the demo
 * workspace's, else the first steerable SAE; null when there is none.
 */
export function pickerSae(
  setup: SteerSetup,
  saes: { id: string; model: string }[],
  workspaceSaeId: string | null,
): { id: string; model: string } | null {
  const named = setup.edits.map((e) => e.unit.split('/')[1]).find((id) => id !== undefined && id !== '');
  return saes.find((s) => s.id === named) ?? saes.find((s) => s.id === workspaceSaeId) ?? saes[0] ?? null;
}
