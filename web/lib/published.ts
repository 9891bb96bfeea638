/** What /published shows: one model's imported neurons, optionally one layer, a minimum score, a search. */
export interface PublishedFilter {
  model: string;
  layer?: number;
  minScore?: number;
  q?: string;
  after?: string;
}

/** The /published URL of a filter: the page is a function of its URL, so every view can be linked. */
export function publishedPath(filter: PublishedFilter): string {
  const params = new URLSearchParams({ model: filter.model });
  if (filter.layer !== undefined) params.set('layer', String(filter.layer));
  if (filter.minScore !== undefined) params.set('minScore', String(filter.minScore));
  if (filter.q) params.set('q', filter.q);
  if (filter.after) params.set('after', filter.after);
  return `/published?${params}`;
}
