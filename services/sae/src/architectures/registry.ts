import type { Architecture, ArchitectureRuntime } from './architecture.js';
import { batchTopK } from './batchtopk.js';
import { jumpRelu } from './jumprelu.js';
import { matryoshka } from './matryoshka.js';
import { reluL1 } from './relu-l1.js';
import { topK } from './topk.js';

/**
 * Every trainable architecture, one line each (see README.md, "Architectures"). The order is the one
 * `--arch` and error messages list them in; the first is the default.
 */
const ALL = [topK, batchTopK, reluL1, jumpRelu, matryoshka] as const;

type Listed = (typeof ALL)[number];
type SettingsOf<A> = A extends Architecture<infer S> ? S : never;

/** One architecture's settings, tagged by `kind`: what a trainer is built with. */
export type ArchitectureSettings = SettingsOf<Listed>;
/** The registry's names: `--arch`, a TrainRequest's `architecture`, `kind` in the settings. */
export type TrainableArchitecture = Listed['name'];

export const TRAINABLE_ARCHITECTURES: readonly TrainableArchitecture[] = ALL.map((a) => a.name);
export const DEFAULT_ARCHITECTURE: TrainableArchitecture = ALL[0].name;

const BY_NAME = new Map<string, Architecture<ArchitectureSettings>>(ALL.map((a) => [a.name, a]));

export function isTrainableArchitecture(name: string): name is TrainableArchitecture {
  return BY_NAME.has(name);
}

/** The architecture registered under `name`. */
export function getArchitecture(name: TrainableArchitecture): Architecture<ArchitectureSettings> {
  const found = BY_NAME.get(name);
  if (!found) throw new Error(`no architecture ${name}; trainable: ${TRAINABLE_ARCHITECTURES.join(', ')}`);
  return found;
}

/** What a trainer uses of the architecture `settings.kind` with these settings. */
export function architectureRuntime(settings: ArchitectureSettings): ArchitectureRuntime {
  return getArchitecture(settings.kind).runtime(settings);
}
