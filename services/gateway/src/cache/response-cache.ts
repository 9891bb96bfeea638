import { createHash } from 'node:crypto';
import { ByteLru } from '@loupe/common';
import type { NextFunction, Request, Response } from 'express';
import { Kind, type OperationDefinitionNode, parse } from 'graphql';

/**
 * Root fields whose answers depend only on finished jobs' records, model and SAE weights and stored
 * explanations: a unit page. Anything else (jobs, progress, forward passes, search) always runs.
 */
const CACHEABLE_ROOT_FIELDS = new Set(['unit', 'units', '__typename']);

/** Kept answers older than STALE_FACTOR × maxAgeMs are not sent even while a refresh is pending. */
const STALE_FACTOR = 10;

/** Distinct documents whose cacheability is remembered (by hash); APQ clients send a few dozen. */
const MAX_DOCUMENTS = 1000;

interface Entry {
  body: string;
  etag: string;
  storedAt: number;
  generation: number;
  /** how to ask again (the request as it came) when the answer is to be refreshed */
  replay: { method: string; url: string; body?: string };
}

/** A request the cache makes to itself to refresh an answer: it runs whatever is kept. */
const REFRESH_HEADER = 'x-loupe-cache-refresh';

/**
 * Background refreshes: one at a time, one per REFRESH_INTERVAL_MS at most. A refresh runs the whole
 * query (about 15 ms of CPU for a unit page), so their rate, not the request rate, must bound what
 * they take from the cores requests need (here at most a third of one); answers that wait longer
 * than that for their turn age out and run on their next request instead.
 */
const MAX_REFRESHES = 1;
const REFRESH_INTERVAL_MS = 50;

interface GraphqlRequest {
  query?: unknown;
  variables?: unknown;
  operationName?: unknown;
  extensions?: unknown;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Whether `query`'s operation (the one named, or the only one) reads only cacheable root fields. */
export function cacheableOperation(query: string, operationName: string | undefined): boolean {
  let operations: OperationDefinitionNode[];
  try {
    operations = parse(query, { maxTokens: 2000 }).definitions.filter(
      (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
    );
  } catch {
    return false;
  }
  const operation = operationName
    ? operations.find((o) => o.name?.value === operationName)
    : operations.length === 1
      ? operations[0]
      : undefined;
  return (
    operation?.operation === 'query' &&
    operation.selectionSet.selections.every(
      (s) => s.kind === Kind.FIELD && CACHEABLE_ROOT_FIELDS.has(s.name.value),
    )
  );
}

/** The fields of a GraphQL request, from a POST body or a GET query string (JSON-encoded parts). */
function graphqlRequest(req: Request): GraphqlRequest | undefined {
  if (req.method === 'POST') return typeof req.body === 'object' && req.body ? req.body : undefined;
  if (req.method !== 'GET' && req.method !== 'HEAD') return undefined;
  const q = req.query as Record<string, unknown>;
  const json = (v: unknown) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v);
    } catch {
      return undefined;
    }
  };
  return {
    query: q.query,
    variables: json(q.variables),
    operationName: q.operationName,
    extensions: json(q.extensions),
  };
}

/**
 * Whether If-None-Match names `etag` (weak comparison). Not Express's req.fresh: that also honours a
 * request's Cache-Control: no-cache, which fetch() adds to every conditional request it sends itself.
 */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const weak = (tag: string) => tag.trim().replace(/^W\//, '');
  return ifNoneMatch.split(',').some((tag) => tag.trim() === '*' || weak(tag) === weak(etag));
}

function persistedHash(extensions: unknown): string | undefined {
  const hash = (extensions as { persistedQuery?: { sha256Hash?: unknown } } | undefined)?.persistedQuery
    ?.sha256Hash;
  return typeof hash === 'string' ? hash : undefined;
}

/**
 * Whole answers to unit-page queries, as the bytes that were sent, with their ETag. Executing a unit
 * page builds and serialises thousands of small objects (tokens and values of 40 windows); most pages
 * are asked for again and again, so the gateway keeps the answer and sends it as it is. An answer
 * older than `maxAgeMs` is still sent (up to STALE_FACTOR times that age) while the gateway asks
 * itself for a fresh one in the background, MAX_REFRESHES at a time, so data changed elsewhere (a
 * capture job finishing, an explanation written by the CLI) shows within about `maxAgeMs` when the
 * gateway keeps up, and never later than STALE_FACTOR × `maxAgeMs`. A mutation through the gateway
 * drops every answer at once. Answers with errors are never kept. GET requests (APQ clients) with a
 * matching If-None-Match get 304 without a body.
 */
export class ResponseCache {
  private readonly entries: ByteLru<string, Entry>;
  private readonly cacheableDocuments = new Map<string, boolean>();
  private generation = 0;
  private readonly refreshing = new Set<string>();
  private lastRefreshAt = Number.NEGATIVE_INFINITY;

  constructor(
    maxBytes: number,
    readonly maxAgeMs: number,
    /** the gateway's own /graphql URL, which refreshes are sent to */
    private readonly selfUrl: string,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = new ByteLru(maxBytes);
  }

  /** Forgets every answer (a mutation may have changed what they show). */
  clear(): void {
    this.generation++;
  }

  stats(): { answers: number; bytes: number; hits: number; misses: number } {
    return {
      answers: this.entries.size,
      bytes: this.entries.bytes,
      hits: this.entries.hits,
      misses: this.entries.misses,
    };
  }

  /** The document's cacheability, by its APQ hash or the hash of its text; undefined when unknown. */
  private cacheable(body: GraphqlRequest): string | undefined {
    const operationName = typeof body.operationName === 'string' ? body.operationName : undefined;
    const text = typeof body.query === 'string' ? body.query : undefined;
    const documentHash = persistedHash(body.extensions) ?? (text === undefined ? undefined : sha256(text));
    if (documentHash === undefined) return undefined;
    const decisionKey = `${documentHash}\0${operationName ?? ''}`;
    let decision = this.cacheableDocuments.get(decisionKey);
    if (decision === undefined) {
      if (text === undefined) return undefined;
      decision = cacheableOperation(text, operationName);
      if (this.cacheableDocuments.size >= MAX_DOCUMENTS) this.cacheableDocuments.clear();
      this.cacheableDocuments.set(decisionKey, decision);
    }
    return decision ? decisionKey : undefined;
  }

  /** Express middleware for /graphql, after the body parser. */
  middleware() {
    return (req: Request, res: Response, next: NextFunction): void => {
      if (this.maxAgeMs === 0) {
        next();
        return;
      }
      const body = graphqlRequest(req);
      const documentKey = body && this.cacheable(body);
      if (!body || !documentKey) {
        next();
        return;
      }
      const key = sha256(`${documentKey}\0${JSON.stringify(body.variables ?? {})}`);
      const refresh = req.headers[REFRESH_HEADER] !== undefined;
      const entry = refresh ? undefined : this.entries.get(key);
      const now = this.now();
      const age = entry ? now - entry.storedAt : 0;
      if (entry && entry.generation === this.generation && age <= STALE_FACTOR * this.maxAgeMs) {
        if (age > this.maxAgeMs) this.refresh(key, entry);
        res.setHeader('x-loupe-cache', 'hit');
        res.setHeader('etag', entry.etag);
        res.setHeader('cache-control', 'no-cache');
        if (req.method !== 'POST' && matches(req.headers['if-none-match'], entry.etag)) {
          res.status(304).end();
          return;
        }
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.status(200).end(entry.body);
        return;
      }
      const generation = this.generation;
      const send = res.send.bind(res);
      res.send = (sent: unknown) => {
        if (res.statusCode === 200 && typeof sent === 'string' && sent.startsWith('{"data"')) {
          const etag = `W/"${createHash('sha1').update(sent).digest('base64url')}"`;
          res.setHeader('etag', etag);
          res.setHeader('cache-control', 'no-cache');
          const replay = {
            method: req.method,
            url: req.originalUrl,
            body: req.method === 'POST' ? JSON.stringify(req.body) : undefined,
          };
          if (generation === this.generation)
            this.entries.set(
              key,
              { body: sent, etag, storedAt: now, generation, replay },
              256 + 2 * sent.length + (replay.body?.length ?? 0),
            );
        }
        return send(sent);
      };
      next();
    };
  }

  /** Asks the gateway for `entry`'s request again, which stores the new answer; errors keep the old one. */
  private refresh(key: string, entry: Entry): void {
    if (this.refreshing.has(key)) return;
    const now = this.now();
    if (this.refreshing.size >= MAX_REFRESHES || now - this.lastRefreshAt < REFRESH_INTERVAL_MS) return;
    this.lastRefreshAt = now;
    this.refreshing.add(key);
    const url = new URL(entry.replay.url, this.selfUrl);
    fetch(url, {
      method: entry.replay.method,
      headers: {
        [REFRESH_HEADER]: '1',
        'content-type': 'application/json',
        'apollo-require-preflight': 'true',
      },
      body: entry.replay.body,
    })
      .then((response) => response.arrayBuffer())
      .catch(() => undefined)
      .finally(() => this.refreshing.delete(key));
  }

  /**
   * Apollo plugin (typed structurally, like readAccessPlugin): a mutation clears every kept answer,
   * before it runs and once it has run.
   */
  plugin() {
    const clearOnMutation = async ({ operation }: { operation?: { operation: string } | null }) => {
      if (operation?.operation === 'mutation') this.clear();
    };
    return {
      requestDidStart: async () => ({
        didResolveOperation: clearOnMutation,
        willSendResponse: clearOnMutation,
      }),
    };
  }
}
