import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** OpenAI's public dataset (README of openai/automated-interpretability: az://openaipublic/neuron-explainer/data). */
export const OPENAI_NEURONS_URL = 'https://openaipublic.blob.core.windows.net/neuron-explainer/data';

/** A file's text, or why there is none: missing (404, no such file) or unreadable after retries. */
export type Fetched = { ok: true; text: string } | { ok: false; missing: boolean; why: string };

/** Reads dataset files by their path relative to the dataset root (`collated-activations/0/1.json`). */
export interface DatasetSource {
  readonly location: string;
  read(relative: string): Promise<Fetched>;
}

export interface HttpRetry {
  attempts: number;
  /** first wait; doubled after each failed attempt, with jitter */
  baseDelayMs: number;
  timeoutMs: number;
}

const DEFAULT_RETRY: HttpRetry = { attempts: 5, baseDelayMs: 250, timeoutMs: 60_000 };

export function datasetSource(location: string, retry: Partial<HttpRetry> = {}): DatasetSource {
  return /^https?:\/\//.test(location)
    ? new HttpDatasetSource(location.replace(/\/+$/, ''), { ...DEFAULT_RETRY, ...retry })
    : new FolderDatasetSource(path.resolve(location));
}

class FolderDatasetSource implements DatasetSource {
  constructor(readonly location: string) {}

  async read(relative: string): Promise<Fetched> {
    const file = path.join(this.location, relative);
    try {
      return { ok: true, text: await readFile(file, 'utf8') };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      return { ok: false, missing: code === 'ENOENT', why: `${file}: ${(error as Error).message}` };
    }
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * GET with retries: network errors, timeouts, 429 and 5xx are tried again after a growing wait (a
 * blob store under load answers 503 now and then); a 404 is a missing file at once; other 4xx fail.
 */
class HttpDatasetSource implements DatasetSource {
  constructor(
    readonly location: string,
    private readonly retry: HttpRetry,
  ) {}

  async read(relative: string): Promise<Fetched> {
    const url = `${this.location}/${relative}`;
    let why = '';
    for (let attempt = 1; attempt <= this.retry.attempts; attempt++) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(this.retry.timeoutMs) });
        if (response.ok) return { ok: true, text: await response.text() };
        await response.body?.cancel();
        // Azure answers 404 for a blob that does not exist (and 409/403 never for a public one).
        if (response.status === 404) return { ok: false, missing: true, why: `${url}: 404 not found` };
        why = `${url}: HTTP ${response.status}`;
        if (response.status !== 429 && response.status < 500) break;
      } catch (error) {
        why = `${url}: ${(error as Error).message}`;
      }
      if (attempt < this.retry.attempts)
        await sleep(this.retry.baseDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random()));
    }
    return { ok: false, missing: false, why: `${why} (after retries)` };
  }
}
