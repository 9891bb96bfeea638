import type { SaeArchitecture } from '../sae-model.js';
import { saeLensJumpRelu } from './jumprelu.js';
import type { SaeLensArchitecture } from './saelens-architecture.js';
import { saeLensStandard } from './standard.js';
import { saeLensTopK } from './topk.js';

/** Every SAELens architecture read, written and encoded here (names in sae-model.ts's SAE_ARCHITECTURES). */
const SAELENS_ARCHITECTURES: Record<SaeArchitecture, SaeLensArchitecture> = {
  standard: saeLensStandard,
  topk: saeLensTopK,
  jumprelu: saeLensJumpRelu,
};

/** How SAEs of SAELens architecture `name` are read, written and encoded. */
export function saeLensArchitecture(name: SaeArchitecture): SaeLensArchitecture {
  return SAELENS_ARCHITECTURES[name];
}
