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
/**
 * Attention internals, TransformerLens' names and shapes without the batch axis: q, k, v and z are
 * [pos, head, d_head]; attn_scores (scaled, masked entries at float32's lowest) and pattern (softmax,
 * zeros where masked) are [head, query_pos, key_pos].
 */
export const ATTENTION_HOOK_KINDS = [
  'attn.hook_q',
  'attn.hook_k',
  'attn.hook_v',
  'attn.hook_attn_scores',
  'attn.hook_pattern',
  'attn.hook_z',
] as const;
export type AttentionHookKind = (typeof ATTENTION_HOOK_KINDS)[number];
export type BlockHookKind = (typeof BLOCK_HOOK_KINDS)[number] | AttentionHookKind;

export const GLOBAL_HOOKS = ['hook_embed', 'hook_pos_embed', 'ln_final.hook_normalized'] as const;
export type GlobalHook = (typeof GLOBAL_HOOKS)[number];

export type HookRef =
  | { kind: 'global'; name: GlobalHook }
  | { kind: 'block'; layer: number; hook: BlockHookKind };

/**
 * Width of a position-major hook's last axis: d_model everywhere except the MLP's hidden layer. The
 * attention hooks are not [pos, width]: see `hookLayout` (and `requirePositionHook` for callers that
 * store or pool per-position vectors).
 */
export function hookWidth(ref: HookRef, dims: { dModel: number; dMlp: number }): number {
  return ref.kind === 'block' && (ref.hook === 'mlp.hook_pre' || ref.hook === 'mlp.hook_post')
    ? dims.dMlp
    : dims.dModel;
}

export function isAttentionHook(
  ref: HookRef,
): ref is { kind: 'block'; layer: number; hook: AttentionHookKind } {
  return ref.kind === 'block' && (ATTENTION_HOOK_KINDS as readonly string[]).includes(ref.hook);
}

/** The three layouts a hook's value comes in, per text (no batch axis). */
export type HookLayout =
  | { kind: 'position'; width: number } // [pos, width]
  | { kind: 'head'; nHead: number; dHead: number } // [pos, head, d_head]
  | { kind: 'keyed'; nHead: number }; // [head, query_pos, key_pos]

export function hookLayout(ref: HookRef, dims: { dModel: number; dMlp: number; nHead: number }): HookLayout {
  if (!isAttentionHook(ref)) return { kind: 'position', width: hookWidth(ref, dims) };
  if (ref.hook === 'attn.hook_pattern' || ref.hook === 'attn.hook_attn_scores')
    return { kind: 'keyed', nHead: dims.nHead };
  return { kind: 'head', nHead: dims.nHead, dHead: dims.dModel / dims.nHead };
}

/** The hook's shape for a text of `tokens` positions, as TransformerLens gives it without the batch axis. */
export function hookShape(
  ref: HookRef,
  dims: { dModel: number; dMlp: number; nHead: number },
  tokens: number,
): number[] {
  const layout = hookLayout(ref, dims);
  if (layout.kind === 'position') return [tokens, layout.width];
  if (layout.kind === 'head') return [tokens, layout.nHead, layout.dHead];
  return [layout.nHead, tokens, tokens];
}

/**
 * Parses a hook that must hold one vector per position (capture shards, pooling, search, SAEs): the
 * attention internals are refused with the reason, rather than stored with a wrong width.
 */
export function requirePositionHook(name: string, nLayer: number, purpose: string): HookRef {
  const ref = parseHook(name, nLayer);
  if (isAttentionHook(ref)) {
    throw new UserInputError(
      `hook "${name}" cannot be used for ${purpose}: it is not one vector per position; use a residual or MLP hook (${BLOCK_HOOK_KINDS.join(', ')})`,
      'UNKNOWN_HOOK',
    );
  }
  return ref;
}

/**
 * Parses a hook whose activations can be stored one vector per position (capture shards): residual and
 * MLP hooks, and the per-head attention hooks q, k, v and z with their heads side by side (width
 * n_head · d_head, the layout SAELens's hook_z SAEs read). Patterns and scores ([head, q, k]) are refused.
 */
export function requireShardableHook(name: string, nLayer: number, purpose: string): HookRef {
  const ref = parseHook(name, nLayer);
  if (ref.kind === 'block' && (ref.hook === 'attn.hook_pattern' || ref.hook === 'attn.hook_attn_scores')) {
    throw new UserInputError(
      `hook "${name}" cannot be used for ${purpose}: it is [head, query, key], not one vector per position; use a residual, MLP or attn.hook_q/k/v/z hook`,
      'UNKNOWN_HOOK',
    );
  }
  return ref;
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
  if (
    match &&
    ((BLOCK_HOOK_KINDS as readonly string[]).includes(match[2]) ||
      (ATTENTION_HOOK_KINDS as readonly string[]).includes(match[2]))
  ) {
    const layer = Number(match[1]);
    if (layer < nLayer) return { kind: 'block', layer, hook: match[2] as BlockHookKind };
    throw new UserInputError(`unknown hook "${name}": the model has layers 0-${nLayer - 1}`, 'UNKNOWN_HOOK');
  }
  throw new UserInputError(
    `unknown hook "${name}": expected one of ${GLOBAL_HOOKS.join(', ')} or blocks.{L}.{${[...BLOCK_HOOK_KINDS, ...ATTENTION_HOOK_KINDS].join('|')}}`,
    'UNKNOWN_HOOK',
  );
}

/**
 * Every position-major hook of a model in forward order (what the manifest lists and capture stores);
 * `attentionHooks` names the attention internals the graph declares beside them.
 */
export function allHooks(nLayer: number): string[] {
  const names: string[] = ['hook_embed', 'hook_pos_embed'];
  for (let layer = 0; layer < nLayer; layer++) {
    for (const hook of BLOCK_HOOK_KINDS) names.push(blockHook(layer, hook));
  }
  names.push('ln_final.hook_normalized');
  return names;
}

/** Every layer's attention hooks, in forward order within each layer. */
export function attentionHooks(nLayer: number): string[] {
  const names: string[] = [];
  for (let layer = 0; layer < nLayer; layer++) {
    for (const hook of ATTENTION_HOOK_KINDS) names.push(blockHook(layer, hook));
  }
  return names;
}
