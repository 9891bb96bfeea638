import type { RecordWindow__Output } from '@loupe/common/grpc';

/** Shapes shared by several resolvers: gRPC messages turned into what the schema's types read. */
export interface TokenView {
  id: number;
  text: string;
}

export function tokens(ids: number[], strings: string[]): TokenView[] {
  return ids.map((id, i) => ({ id, text: strings[i] ?? '' }));
}

export interface RecordWindowView {
  window: number;
  tokens: TokenView[];
  values: number[];
  maxValue: number;
}

export function recordWindow(w: RecordWindow__Output): RecordWindowView {
  return {
    window: Number(w.window),
    tokens: tokens(w.ids, w.tokens),
    values: w.values,
    maxValue: w.values.reduce((max, v) => Math.max(max, v), w.values[0] ?? 0),
  };
}
