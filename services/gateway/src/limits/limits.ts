/** The gateway's limits in one place; each is checked before any service is called. */
export const LIMITS = {
  /** tokens of one GraphQL document: a parse stops there, before deep nesting can exhaust the stack */
  maxTokens: 2_000,
  /** levels of nested fields in one operation (introspection not counted) */
  maxDepth: 10,
  /** fields × page sizes in one operation (see query-limits.ts) */
  maxCost: 25_000,
  /**
   * token-equivalents of forward passes one operation may ask for (see compute-cost.ts): a 1,024-token
   * prompt with 256 generated tokens costs 2,560; forty 256-token steers cost over 20,000
   */
  maxComputeTokens: 8_192,
  /** items per page of a connection; `first` defaults to defaultPage */
  maxPage: 100,
  defaultPage: 20,
  /** hooks per activations request */
  maxHooks: 8,
  /** values one HookActivations.values may return without `indices` (tokens × width) */
  maxValuesPerHook: 262_144,
  /** units per `units` query; also distinct features whose statistics or records one request loads */
  maxUnits: 100,
  /** features listed per token by `encode` */
  maxFeaturesPerToken: 64,
  /** results per shopSearch column (each result's `why` encodes its text once) */
  maxShopResults: 50,
  /** steering edits per request */
  maxEdits: 8,
  /** tokens generated per continuation (the capture service's own limit) */
  maxNewTokens: 256,
  /** characters of an explanation to score, and of an explanation search query */
  maxExplanationChars: 2000,
  /** candidate explanations per explain (the explainer's own limit) */
  maxCandidates: 16,
  /** explanation search hits the explainer returns at most (pages reach that far) */
  maxSearchHits: 500,
  /** units a scoring job runs at once */
  maxJobConcurrency: 64,
  /** how often a job progress subscription asks the service for the job */
  progressPollMs: 500,
} as const;
