import { UserInputError } from './errors.js';

/**
 * TransformerLens hook names: the one vocabulary for activations everywhere (graph outputs, proto
 * messages, database rows, GraphQL, URLs). Every other module parses and formats names through here.
 */
export const BLOCK_HOOK_KINDS = [
  'hook_resid_pre',
  'hook_attn_out',
  'hook_resid_mid',
  'mlp.hook_pre',
  'mlp.hook_post',
  'hook_mlp_out',
  'hook_resid_post',
] as const;
export type BlockHookKind = (typeof BLOCK_HOOK_KINDS)[number];

export const GLOBAL_HOOKS = ['hook_embed', 'hook_pos_embed', 'ln_final.hook_normalized'] as const;
export type GlobalHook = (typeof GLOBAL_HOOKS)[number];

export type HookRef =
  | { kind: 'global'; name: GlobalHook }
  | { kind: 'block'; layer: number; hook: BlockHookKind };

/** Width of the hook's last axis: d_model everywhere except the MLP's hidden layer. */
export function hookWidth(ref: HookRef, dims: { dModel: number; dMlp: number }): number {
  return ref.kind === 'block' && (ref.hook === 'mlp.hook_pre' || ref.hook === 'mlp.hook_post')
    ? dims.dMlp
    : dims.dModel;
}

/** Neuron records (and per-window neuron statistics) are kept for the MLP's post-activation neurons. */
export function isNeuronHook(name: string): boolean {
  return name.startsWith('blocks.') && name.endsWith('.mlp.hook_post');
}

export function blockHook(layer: number, hook: BlockHookKind): string {
  return `blocks.${layer}.${hook}`;
}

export function formatHook(ref: HookRef): string {
  return ref.kind === 'global' ? ref.name : blockHook(ref.layer, ref.hook);
}

const BLOCK_PATTERN = /^blocks\.(0|[1-9]\d{0,3})\.(.+)$/;

/** Parses a hook name and checks it against the model's layer count. */
export function parseHook(name: string, nLayer: number): HookRef {
  if ((GLOBAL_HOOKS as readonly string[]).includes(name)) return { kind: 'global', name: name as GlobalHook };
  const match = BLOCK_PATTERN.exec(name);
  if (match && (BLOCK_HOOK_KINDS as readonly string[]).includes(match[2])) {
    const layer = Number(match[1]);
    if (layer < nLayer) return { kind: 'block', layer, hook: match[2] as BlockHookKind };
    throw new UserInputError(`unknown hook "${name}": the model has layers 0-${nLayer - 1}`, 'UNKNOWN_HOOK');
  }
  throw new UserInputError(
    `unknown hook "${name}": expected one of ${GLOBAL_HOOKS.join(', ')} or blocks.{L}.{${BLOCK_HOOK_KINDS.join('|')}}`,
    'UNKNOWN_HOOK',
  );
}

/** Every hook of a model in forward order: the graph declares exactly these as outputs. */
export function allHooks(nLayer: number): string[] {
  const names: string[] = ['hook_embed', 'hook_pos_embed'];
  for (let layer = 0; layer < nLayer; layer++) {
    for (const hook of BLOCK_HOOK_KINDS) names.push(blockHook(layer, hook));
  }
  names.push('ln_final.hook_normalized');
  return names;
}
