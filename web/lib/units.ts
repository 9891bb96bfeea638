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
