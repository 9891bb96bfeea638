// Downloads a checkpoint's files from the Hugging Face hub into a directory, resumably and verified.
//
// The protocol mirrors huggingface_hub's file_download.py: a HEAD on resolve/ (without following
// redirects, so the LFS headers on the 302 stay visible) gives size, sha256 and the resolved commit;
// then a GET streams into `<file>.incomplete`, resumed with Range after any interruption, and the file
// only takes its final name once its size and (when known) sha256 check out.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { LoupeError } from '@loupe/common';
import { GPT2_CHECKPOINT_FILES, hubFileUrl, sha256FromEtag, validateRepoId } from './hf-files.js';

export interface DownloadProgress {
  file: string;
  receivedBytes: number;
  totalBytes: number | null;
}

export interface PullOptions {
  endpoint: string;
  repo: string;
  revision: string;
  destDir: string;
  /** Hugging Face token, sent as `Authorization: Bearer` to the hub's own origin only. */
  token?: string;
  onProgress?: (p: DownloadProgress) => void;
  fetchImpl?: typeof fetch;
  /** Retries per file after transient failures (resets whenever bytes arrive); default 5. */
  retries?: number;
  /** First backoff delay; doubles per consecutive failure. Default 500 ms; tests shorten it. */
  retryBaseMs?: number;
  /** A request that gets no response, or no body bytes, for this long is dropped and resumed. Default 30 s. */
  stallTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface DownloadedFile {
  file: string;
  bytes: number;
  sha256: string;
}

export interface DownloadResult {
  dir: string;
  files: DownloadedFile[];
  /** The commit the revision resolved to, when the hub said (x-repo-commit). */
  commit?: string;
}

/** A failure that retrying will not fix; the message is meant for the user as is. */
export class HubDownloadError extends LoupeError {
  constructor(
    message: string,
    readonly file?: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE');
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

// Failures worth another try: dropped connections, 5xx, 429. Anything not classified as such
// (file system errors, our own bugs) propagates at once instead of being retried blindly.
class TransientError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

const MAX_REDIRECTS = 10;
const MAX_BACKOFF_MS = 30_000;
const MAX_RETRY_AFTER_MS = 120_000;
const COMMIT_SHA = /^[0-9a-f]{40}$/;

interface Ctx {
  endpoint: string;
  origin: string;
  repo: string;
  revision: string;
  // Once the hub names the commit behind the revision, later requests ask for that commit, so a push
  // to the branch mid-pull cannot mix files from two versions.
  pinned?: string;
  destDir: string;
  token?: string;
  onProgress?: (p: DownloadProgress) => void;
  fetch: typeof fetch;
  retries: number;
  retryBaseMs: number;
  stallTimeoutMs: number;
  signal?: AbortSignal;
}

interface FileMeta {
  size: number | null;
  sha256?: string;
  commit?: string;
}

export async function downloadCheckpoint(opts: PullOptions): Promise<DownloadResult> {
  return downloadHubFiles(opts, GPT2_CHECKPOINT_FILES);
}

export async function downloadHubFiles(opts: PullOptions, files: readonly string[]): Promise<DownloadResult> {
  validateRepoId(opts.repo);
  const ctx: Ctx = {
    endpoint: opts.endpoint,
    origin: new URL(opts.endpoint).origin,
    repo: opts.repo,
    revision: opts.revision,
    destDir: opts.destDir,
    token: opts.token,
    onProgress: opts.onProgress,
    fetch: opts.fetchImpl ?? fetch,
    retries: opts.retries ?? 5,
    retryBaseMs: opts.retryBaseMs ?? 500,
    stallTimeoutMs: opts.stallTimeoutMs ?? 30_000,
    signal: opts.signal,
  };
  await mkdir(ctx.destDir, { recursive: true });
  const done: DownloadedFile[] = [];
  for (const file of files) {
    const meta = await retrying(ctx, file, () => headFile(ctx, file));
    if (meta.commit && !ctx.pinned && COMMIT_SHA.test(meta.commit)) ctx.pinned = meta.commit;
    done.push(await downloadFile(ctx, file, meta));
  }
  return { dir: ctx.destDir, files: done, ...(ctx.pinned ? { commit: ctx.pinned } : {}) };
}

async function downloadFile(ctx: Ctx, file: string, meta: FileMeta): Promise<DownloadedFile> {
  const finalPath = join(ctx.destDir, file);
  const partialPath = `${finalPath}.incomplete`;
  await mkdir(dirname(finalPath), { recursive: true });

  const existing = await sizeOf(finalPath);
  if (existing !== null && existing === meta.size) {
    // The result reports a sha256 for every file, so hashing is needed anyway; it also catches a
    // same-size file that was damaged locally, which is then fetched again.
    const sha256 = await sha256File(finalPath);
    if (!meta.sha256 || sha256 === meta.sha256) {
      report(ctx, file, existing, meta.size);
      return { file, bytes: existing, sha256 };
    }
  }

  if (!meta.sha256) {
    // Without a hash to check, a partial file left by an earlier run (perhaps of another revision)
    // cannot be trusted as a prefix. Such files are small git files, so starting over costs little.
    await rm(partialPath, { force: true });
  }
  const state: TransferState = { have: 0, total: meta.size };
  await retrying(
    ctx,
    file,
    () => transferOnce(ctx, file, partialPath, state),
    () => state.have,
  );

  const bytes = (await stat(partialPath)).size;
  if (state.total !== null && bytes !== state.total) {
    await rm(partialPath, { force: true });
    throw new HubDownloadError(
      `${file}: received ${bytes} bytes but the hub announced ${state.total}; ` +
        'the partial download was deleted, run the pull again',
      file,
    );
  }
  const sha256 = await sha256File(partialPath);
  if (meta.sha256 && sha256 !== meta.sha256) {
    await rm(partialPath, { force: true });
    throw new HubDownloadError(
      `${file}: sha256 mismatch (the hub's etag says ${meta.sha256}, the downloaded bytes hash to ` +
        `${sha256}); the partial download was deleted, run the pull again`,
      file,
    );
  }
  await rename(partialPath, finalPath);
  report(ctx, file, bytes, state.total ?? bytes);
  return { file, bytes, sha256 };
}

interface TransferState {
  // Bytes of the file on disk in `.incomplete`; retrying() watches it to tell progress from a stall.
  have: number;
  total: number | null;
}

// One GET from wherever the partial file left off. Returns when the body ended; a body cut short
// throws a TransientError so the retry loop resumes from the bytes already written.
async function transferOnce(
  ctx: Ctx,
  file: string,
  partialPath: string,
  state: TransferState,
): Promise<void> {
  let have = (await sizeOf(partialPath)) ?? 0;
  if (state.total !== null && have > state.total) {
    // Longer than the file can be: left over from another revision, not a prefix of this one.
    await rm(partialPath, { force: true });
    have = 0;
  }
  state.have = have;
  if (have > 0 && have === state.total) return;

  const url = hubFileUrl(ctx.endpoint, ctx.repo, ctx.pinned ?? ctx.revision, file);
  const { res } = await request(ctx, file, 'GET', url, have > 0 ? { range: `bytes=${have}-` } : {});

  if (res.status === 416 && have > 0) {
    await discard(res);
    const total = parseContentRange(res.headers.get('content-range'))?.total ?? null;
    if (total === have) {
      state.total ??= total;
      return;
    }
    await restart(partialPath, state);
    throw new TransientError(`${file}: the server refused to resume at byte ${have}; starting over`);
  }
  if (!res.ok) {
    await discard(res);
    throw statusError(ctx, file, res);
  }

  let append = false;
  if (res.status === 206) {
    const range = parseContentRange(res.headers.get('content-range'));
    const sameFile = range?.total == null || state.total === null || range.total === state.total;
    if (!range || range.start !== have || !sameFile) {
      await discard(res);
      await restart(partialPath, state);
      throw new TransientError(`${file}: unexpected Content-Range '${res.headers.get('content-range')}'`);
    }
    state.total ??= range.total;
    append = true;
  } else {
    // A 200 to a range request means the server ignored the range: the body is the whole file.
    state.have = 0;
    const length = contentLength(res.headers);
    if (state.total !== null && length !== null && length !== state.total) {
      await discard(res);
      await rm(partialPath, { force: true });
      throw new HubDownloadError(
        `${file}: the hub announced ${state.total} bytes but the download is ${length} bytes`,
        file,
      );
    }
    state.total ??= length;
  }

  const fh = await open(partialPath, append ? 'a' : 'w');
  const reader = res.body?.getReader();
  let finished = false;
  try {
    report(ctx, file, state.have, state.total);
    while (reader) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await within(ctx.stallTimeoutMs, () => reader.read());
      } catch (err) {
        throw new TransientError(
          `${file}: connection lost after ${state.have} bytes: ${describe(err)}`,
          undefined,
          {
            cause: err,
          },
        );
      }
      if (chunk.done) break;
      await fh.write(chunk.value);
      state.have += chunk.value.byteLength;
      report(ctx, file, state.have, state.total);
    }
    finished = true;
  } finally {
    // Whatever stopped us early (a stall, a full disk), the connection must not stay pinned.
    if (!finished) await reader?.cancel().catch(() => undefined);
    await fh.close();
  }
  if (state.total !== null && state.have < state.total) {
    throw new TransientError(`${file}: connection closed after ${state.have} of ${state.total} bytes`);
  }
}

async function restart(partialPath: string, state: TransferState): Promise<void> {
  await rm(partialPath, { force: true });
  state.have = 0;
}

async function headFile(ctx: Ctx, file: string): Promise<FileMeta> {
  const url = hubFileUrl(ctx.endpoint, ctx.repo, ctx.pinned ?? ctx.revision, file);
  const { res, hub } = await request(ctx, file, 'HEAD', url, {}, true);
  await discard(res);
  if (!res.ok && !isRedirect(res.status)) throw statusError(ctx, file, res);
  const size = hub.linkedSize ?? contentLength(res.headers);
  const sha256 = sha256FromEtag(hub.linkedEtag) ?? sha256FromEtag(hub.etag ?? res.headers.get('etag'));
  return { size, ...(sha256 ? { sha256 } : {}), ...(hub.commit ? { commit: hub.commit } : {}) };
}

interface HubHeaders {
  commit?: string;
  linkedEtag?: string;
  linkedSize?: number;
  etag?: string;
}

// Follows redirects by hand: the hub's own headers sit on the 302 and would be lost by fetch's
// redirect handling, and the token must not travel to a CDN on another origin. With `stopAtLfs`,
// the 302 that carries the LFS headers is returned itself, as HEAD needs nothing more.
async function request(
  ctx: Ctx,
  file: string,
  method: 'GET' | 'HEAD',
  startUrl: string,
  extra: Record<string, string>,
  stopAtLfs = false,
): Promise<{ res: Response; hub: HubHeaders }> {
  const hub: HubHeaders = {};
  let url = startUrl;
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = {
      // Sizes and Range offsets are about the stored bytes, so no transparent compression.
      'accept-encoding': 'identity',
      'user-agent': 'loupe',
      ...extra,
    };
    if (ctx.token && new URL(url).origin === ctx.origin) headers.authorization = `Bearer ${ctx.token}`;
    // Only the wait for headers is timed here: the fetch signal also governs the body, and a large file
    // may rightly take longer than any timeout. Body stalls are caught per read in transferOnce.
    const noResponse = new AbortController();
    const timer = setTimeout(
      () => noResponse.abort(new Error(`no response within ${ctx.stallTimeoutMs} ms`)),
      ctx.stallTimeoutMs,
    );
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, noResponse.signal]) : noResponse.signal;
    let res: Response;
    try {
      res = await ctx.fetch(url, { method, headers, redirect: 'manual', signal });
    } catch (err) {
      throw new TransientError(`${file}: request to ${url} failed: ${describe(err)}`, undefined, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
    hub.commit ??= res.headers.get('x-repo-commit') ?? undefined;
    hub.linkedEtag ??= res.headers.get('x-linked-etag') ?? undefined;
    hub.linkedSize ??= parseSize(res.headers.get('x-linked-size')) ?? undefined;
    hub.etag ??= res.headers.get('etag') ?? undefined;
    const location = res.headers.get('location');
    if (!isRedirect(res.status) || !location) return { res, hub };
    if (stopAtLfs && hub.linkedSize !== undefined) return { res, hub };
    await discard(res);
    if (hop >= MAX_REDIRECTS)
      throw new HubDownloadError(`${file}: too many redirects from ${startUrl}`, file);
    url = new URL(location, url).href;
  }
}

function statusError(ctx: Ctx, file: string, res: Response): Error {
  const { status } = res;
  const code = res.headers.get('x-error-code');
  const hubMessage = res.headers.get('x-error-message');
  const where = `repository ${ctx.repo} at revision ${ctx.revision}`;
  const fatal = (message: string) =>
    new HubDownloadError(hubMessage ? `${message} (hub: ${hubMessage})` : message, file, status);
  if (code === 'GatedRepo' || status === 403) {
    return fatal(
      `access to ${where} is forbidden (${file}): it is probably gated; accept its terms on the hub ` +
        'and set HF_TOKEN to a token of that account',
    );
  }
  if (status === 401) {
    return fatal(
      ctx.token
        ? `${where} was not found, or HF_TOKEN cannot read it`
        : `repository ${ctx.repo} not found or private at revision ${ctx.revision}; ` +
            'if it is private or gated, set HF_TOKEN',
    );
  }
  if (status === 404) {
    if (code === 'EntryNotFound') return fatal(`file ${file} not found in ${where}`);
    if (code === 'RevisionNotFound')
      return fatal(`revision ${ctx.revision} not found in repository ${ctx.repo}`);
    return fatal(
      `repository ${ctx.repo} not found or private at revision ${ctx.revision} (while fetching ${file}); ` +
        'check the repo id, and set HF_TOKEN if it is private',
    );
  }
  if (status === 429 || status === 408 || status >= 500) {
    return new TransientError(
      `${file}: HTTP ${status} from the hub`,
      retryAfterMs(res.headers.get('retry-after')),
    );
  }
  return fatal(`${file}: unexpected HTTP ${status} from ${res.url || ctx.endpoint}`);
}

// Runs op until it succeeds, a non-transient error occurs, or `retries` consecutive failures pass
// without progress. Progress (more bytes on disk) resets the count, so a long download over a flaky
// link keeps going as long as it keeps moving.
async function retrying<T>(
  ctx: Ctx,
  file: string,
  op: () => Promise<T>,
  progress?: () => number,
): Promise<T> {
  let failures = 0;
  let mark = progress?.() ?? 0;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (ctx.signal?.aborted) throw ctx.signal.reason ?? err;
      if (!(err instanceof TransientError)) throw err;
      const now = progress?.() ?? 0;
      if (now > mark) failures = 0;
      mark = now;
      failures++;
      if (failures > ctx.retries) {
        throw new HubDownloadError(
          `${file}: giving up after ${ctx.retries} retries: ${err.message}` +
            (progress ? ' (the partial file is kept; run the pull again to resume)' : ''),
          file,
          undefined,
          { cause: err },
        );
      }
      const backoff = Math.min(ctx.retryBaseMs * 2 ** (failures - 1), MAX_BACKOFF_MS);
      await delay(err.retryAfterMs ?? backoff, undefined, { signal: ctx.signal });
    }
  }
}

async function within<T>(ms: number, op: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no data for ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([op(), stalled]);
  } finally {
    clearTimeout(timer);
  }
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}

function parseContentRange(header: string | null): { start: number; total: number | null } | null {
  const m = header?.match(/^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/);
  if (!m) return null;
  return { start: m[1] === undefined ? -1 : Number(m[1]), total: m[2] === '*' ? null : Number(m[2]) };
}

function parseSize(header: string | null): number | null {
  return header !== null && /^\d+$/.test(header.trim()) ? Number(header) : null;
}

function contentLength(headers: Headers): number | null {
  return parseSize(headers.get('content-length'));
}

function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

async function discard(res: Response): Promise<void> {
  // Unread bodies pin the connection in undici; cancelling frees it for the next request.
  await res.body?.cancel().catch(() => undefined);
}

function report(ctx: Ctx, file: string, receivedBytes: number, totalBytes: number | null): void {
  ctx.onProgress?.({ file, receivedBytes, totalBytes });
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
