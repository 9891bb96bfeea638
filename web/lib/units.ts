/** A unit id is `model/hook/index` (DESIGN.md); URLs carry it as path segments, /units/gpt2/blocks.0.mlp.hook_post/12. */
export function unitPath(id: string): string {
  return `/units/${id.split('/').map(encodeURIComponent).join('/')}`;
}

export function unitIdFromSegments(segments: string[]): string {
  return segments.map(decodeURIComponent).join('/');
}

/** Compact display of an activation value. */
export function formatValue(value: number): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return value.toFixed(0);
  if (magnitude >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

/**
 * The list where a unit source's units show ordered by score: "model/hook" (a blocks.{L}.mlp.hook_post:
 * its neurons) or "model/sae-id" (the SAE's features).
 */
export function scoredListPath(source: string): string {
  const [model = '', ...rest] = source.split('/');
  const name = rest.join('/');
  return /^blocks\.\d+\.mlp\.hook_post$/.test(name)
    ? `/hooks/${encodeURIComponent(model)}/${name}?order=SCORE`
    : `/saes/${encodeURIComponent(name)}?order=SCORE`;
}
