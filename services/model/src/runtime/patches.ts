import { type HookLayout, hookLayout, parseHook, UserInputError } from '@loupe/common';
import type { Gpt2Config } from '../config/gpt2-config.js';
import { MASKED_SCORE } from '../graph/gpt2-graph.js';

export const PATCH_MODES = ['zero', 'replace', 'mean'] as const;
export type PatchMode = (typeof PATCH_MODES)[number];

/**
 * The user-facing spelling of a patch (CLI `--patch`, gRPC, GraphQL): rewrite `hook` at `positions`
 * (query positions for attn_scores and pattern), for one `head` of a per-head hook or all of them.
 */
export interface PatchSpec {
  hook: string;
  mode: PatchMode;
  positions?: number[];
  head?: number;
  /** replace only: one array per listed position, of the hook's per-position shape (null = masked score) */
  values?: unknown[];
}

/**
 * A checked patch: `values` holds, per listed position, the slice's numbers row-major (per-position
 * shape: [width], [d_head] or [head, d_head], [keys] or [head, keys] with keys = the text's length), or
 * 'mean' until `resolveMeanPatches` fills it in.
 */
export interface HookPatch {
  hook: string;
  positions: number[];
  head?: number;
  values: Float32Array | 'mean';
}

/** The per-position shape of the hook's patchable slice, for a text of `tokens` positions. */
export function patchSliceShape(layout: HookLayout, head: number | undefined, tokens: number): number[] {
  if (layout.kind === 'position') return [layout.width];
  const inner = layout.kind === 'head' ? layout.dHead : tokens;
  return head === undefined ? [layout.nHead, inner] : [inner];
}

/** Parses and checks patches for one text of `tokens` positions; every mistake is a UserInputError. */
export function toHookPatches(specs: unknown, dims: Gpt2Config, tokens: number): HookPatch[] {
  if (!Array.isArray(specs)) {
    throw new UserInputError(
      'patches must be a JSON array of {"hook", "mode": "zero"|"replace"|"mean", "positions", "head", "values"}',
      'INVALID_ARGUMENT',
    );
  }
  const patches = specs.map((spec, index) => toHookPatch(spec, index, dims, tokens));
  refuseOverlaps(patches, dims);
  return patches;
}

function toHookPatch(spec: unknown, index: number, dims: Gpt2Config, tokens: number): HookPatch {
  const where = `patch[${index}]`;
  const fail = (message: string): never => {
    throw new UserInputError(`${where}: ${message}`, 'INVALID_ARGUMENT');
  };
  if (!spec || typeof spec !== 'object' || Array.isArray(spec))
    fail('expected an object {"hook", "mode", ...}');
  const item = spec as Partial<PatchSpec>;
  if (typeof item.hook !== 'string') fail('"hook" must be a hook name');
  const hook = item.hook as string;
  let layout: HookLayout;
  try {
    layout = hookLayout(parseHook(hook, dims.nLayer), dims);
  } catch (error) {
    return fail((error as Error).message);
  }
  if (!(PATCH_MODES as readonly unknown[]).includes(item.mode))
    fail(`"mode" must be one of ${PATCH_MODES.join(', ')}, got ${JSON.stringify(item.mode)}`);
  const mode = item.mode as PatchMode;

  let head: number | undefined;
  if (item.head !== undefined && item.head !== null) {
    if (layout.kind === 'position')
      fail(`"head" applies only to per-head hooks (attn.hook_q|k|v|z|attn_scores|pattern), not ${hook}`);
    if (!Number.isInteger(item.head) || (item.head as number) < 0 || (item.head as number) >= dims.nHead)
      fail(`head ${JSON.stringify(item.head)} is out of range: the model has heads 0-${dims.nHead - 1}`);
    head = item.head as number;
  }

  const positions = item.positions ?? Array.from({ length: tokens }, (_, p) => p);
  if (!Array.isArray(positions) || positions.length === 0) fail('"positions" must be a non-empty array');
  for (const p of positions) {
    if (!Number.isInteger(p) || p < 0 || p >= tokens)
      fail(`position ${JSON.stringify(p)} is out of range: the text has positions 0-${tokens - 1}`);
  }
  if (new Set(positions).size !== positions.length) fail('"positions" lists a position twice');

  const shape = patchSliceShape(layout, head, tokens);
  const size = shape.reduce((a, b) => a * b, 1);
  if (mode !== 'replace') {
    if (item.values !== undefined) fail(`"values" is only for mode replace, not ${mode}`);
    if (mode === 'mean' && layout.kind === 'keyed')
      fail(`mode mean is not defined for ${hook} (rows of different lengths); use zero or replace`);
    return {
      hook,
      positions,
      head,
      values: mode === 'zero' ? new Float32Array(positions.length * size) : 'mean',
    };
  }
  if (!Array.isArray(item.values)) fail('mode replace needs "values": one array per listed position');
  const rows = item.values as unknown[];
  if (rows.length !== positions.length)
    fail(`"values" has ${rows.length} arrays for ${positions.length} positions; give one per position`);
  const values = new Float32Array(positions.length * size);
  const allowNull = hook.endsWith('attn.hook_attn_scores');
  rows.forEach((row, r) => {
    const flat = flattenExact(row, shape, () =>
      fail(`values[${r}] must have shape [${shape.join(', ')}] (${describeSlice(layout, head)})`),
    );
    flat.forEach((v, i) => {
      // a null score means a masked key, as the graph masks: float32's lowest
      if (v === null && allowNull) values[r * size + i] = MASKED_SCORE;
      else if (typeof v !== 'number' || !Number.isFinite(v))
        fail(
          `values[${r}] holds ${JSON.stringify(v)}; numbers only${allowNull ? ' (null for a masked key)' : ''}`,
        );
      else values[r * size + i] = v;
    });
  });
  return { hook, positions, head, values };
}

function describeSlice(layout: HookLayout, head: number | undefined): string {
  if (layout.kind === 'position') return 'the hook width';
  if (layout.kind === 'head') return head === undefined ? '[head, d_head]' : 'd_head';
  return head === undefined ? '[head, key positions]' : 'one value per key position';
}

/** Nested arrays of exactly `shape`, flattened row-major; `bad()` otherwise. */
function flattenExact(value: unknown, shape: number[], bad: () => never): unknown[] {
  if (shape.length === 0) return [value];
  if (!Array.isArray(value) || value.length !== shape[0]) return bad();
  return value.flatMap((inner) => flattenExact(inner, shape.slice(1), bad));
}

/** Two patches writing the same slice would race inside one scatter: refused instead. */
function refuseOverlaps(patches: HookPatch[], dims: Gpt2Config): void {
  const written = new Map<string, Set<string>>();
  patches.forEach((patch, index) => {
    const slots = written.get(patch.hook) ?? new Set<string>();
    written.set(patch.hook, slots);
    const heads = patch.head === undefined ? [...Array(dims.nHead).keys()] : [patch.head];
    const perHead = hookLayout(parseHook(patch.hook, dims.nLayer), dims).kind !== 'position';
    for (const p of patch.positions) {
      for (const h of perHead ? heads : [0]) {
        const slot = `${p}/${h}`;
        if (slots.has(slot)) {
          throw new UserInputError(
            `patch[${index}]: ${patch.hook} at position ${p}${perHead ? ` head ${h}` : ''} is already patched by an earlier entry`,
            'INVALID_ARGUMENT',
          );
        }
        slots.add(slot);
      }
    }
  });
}

/**
 * Fills in mode mean: each listed position gets the hook's average over all of the text's positions,
 * from `unpatched` (the hook's value in the same run without any patch: steering and clamps apply).
 */
export async function resolveMeanPatches(
  patches: HookPatch[],
  dims: Gpt2Config,
  tokens: number,
  unpatched: (hooks: string[]) => Promise<Map<string, Float32Array>>,
): Promise<HookPatch[]> {
  const wanted = [...new Set(patches.filter((p) => p.values === 'mean').map((p) => p.hook))];
  if (wanted.length === 0) return patches;
  const values = await unpatched(wanted);
  return patches.map((patch) => {
    if (patch.values !== 'mean') return patch;
    const all = values.get(patch.hook);
    if (!all) throw new Error(`no value for ${patch.hook} in the unpatched run`);
    const layout = hookLayout(parseHook(patch.hook, dims.nLayer), dims);
    const perPosition = all.length / tokens; // [pos, width] or [pos, head, d_head]
    const mean = new Float64Array(perPosition);
    for (let p = 0; p < tokens; p++)
      for (let i = 0; i < perPosition; i++) mean[i] += all[p * perPosition + i];
    for (let i = 0; i < perPosition; i++) mean[i] /= tokens;
    // one head's slice of [head, d_head]
    const slice =
      layout.kind === 'head' && patch.head !== undefined
        ? mean.subarray(patch.head * layout.dHead, (patch.head + 1) * layout.dHead)
        : mean;
    const out = new Float32Array(patch.positions.length * slice.length);
    patch.positions.forEach((_, r) => {
      out.set(slice, r * slice.length);
    });
    return { ...patch, values: out };
  });
}

/** The wire spelling (gRPC HookPatch, GraphQL HookPatchInput): values flat, row-major, -Infinity masked. */
export interface FlatPatch {
  hook: string;
  mode: string;
  /** empty = every position */
  positions: number[];
  head?: number | null;
  values: number[];
}

/**
 * Flat wire patches checked as `toHookPatches` checks JSON ones: the flat values are cut into one
 * array per listed position of the hook's per-position shape first (a masked score, -Infinity, as null).
 */
export function fromFlatPatches(flat: FlatPatch[], dims: Gpt2Config, tokens: number): HookPatch[] {
  const specs = flat.map((patch, index): PatchSpec => {
    const positions = patch.positions.length === 0 ? undefined : patch.positions;
    const head = patch.head ?? undefined;
    const spec = { hook: patch.hook, mode: patch.mode as PatchMode, positions, head };
    if (patch.mode !== 'replace') return patch.values.length === 0 ? spec : { ...spec, values: patch.values };
    let layout: HookLayout;
    try {
      layout = hookLayout(parseHook(patch.hook, dims.nLayer), dims);
    } catch (error) {
      throw new UserInputError(`patch[${index}]: ${(error as Error).message}`, 'UNKNOWN_HOOK');
    }
    const shape = patchSliceShape(layout, head, tokens);
    const rows = positions?.length ?? tokens;
    const size = shape.reduce((a, b) => a * b, 1);
    if (patch.values.length !== rows * size) {
      throw new UserInputError(
        `patch[${index}]: values has ${patch.values.length} numbers; replace needs ${rows} position(s) × [${shape.join(', ')}] = ${rows * size}`,
      );
    }
    const values = patch.values.map((v) => (v === Number.NEGATIVE_INFINITY ? null : v));
    return {
      ...spec,
      values: Array.from({ length: rows }, (_, r) => nest(values.slice(r * size, (r + 1) * size), shape)),
    };
  });
  return toHookPatches(specs, dims, tokens);
}

function nest(values: (number | null)[], shape: number[]): unknown {
  if (shape.length === 1) return values;
  const stride = values.length / shape[0];
  return Array.from({ length: shape[0] }, (_, i) =>
    nest(values.slice(i * stride, (i + 1) * stride), shape.slice(1)),
  );
}
