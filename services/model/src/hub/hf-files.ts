import { join } from 'node:path';
import { UserInputError } from '@loupe/common';
import { CHECKPOINT_FILES } from '../config/checkpoint.js';
// Where a Hugging Face checkpoint's files live on the hub, and how to read what the hub says about them.

// Order matters only for user experience: the small files come first so a bad repo id, a missing
// tokenizer or an auth problem shows up before we spend minutes on the weights.
export const GPT2_CHECKPOINT_FILES = [
  CHECKPOINT_FILES.config,
  CHECKPOINT_FILES.vocab,
  CHECKPOINT_FILES.merges,
  CHECKPOINT_FILES.weights,
] as const;
export type Gpt2CheckpointFile = (typeof GPT2_CHECKPOINT_FILES)[number];

// The hub's own rule is a little stricter (no leading/trailing '.' or '-', no '--' or '..', 96 chars),
// but the part that matters here is that a repo id can never smuggle a path or a query into the URL.
const REPO_PART = /^[A-Za-z0-9._-]+$/;
const MAX_REPO_ID_LENGTH = 96;

export function validateRepoId(repo: string): void {
  const parts = repo.split('/');
  const ok =
    repo.length > 0 &&
    repo.length <= MAX_REPO_ID_LENGTH &&
    parts.length <= 2 &&
    parts.every((p) => REPO_PART.test(p) && p !== '.' && p !== '..');
  if (!ok) {
    throw new UserInputError(
      `invalid Hugging Face repo id '${repo}': expected 'name' or 'owner/name' using only letters, ` +
        `digits, '.', '_' and '-' (for example 'gpt2' or 'openai-community/gpt2')`,
    );
  }
}

export function hubFileUrl(endpoint: string, repo: string, revision: string, file: string): string {
  validateRepoId(repo);
  if (revision.length === 0) throw new UserInputError('revision must not be empty (the default is main)');
  const base = endpoint.replace(/\/+$/, '');
  // The revision is one path segment even when it contains '/', e.g. 'refs/pr/1', exactly as the
  // hub's Python client encodes it; file paths keep their '/' separators.
  const filePath = file.split('/').map(encodeURIComponent).join('/');
  return `${base}/${repo}/resolve/${encodeURIComponent(revision)}/${filePath}`;
}

// Strips the weak marker and quotes. The hub's etag is the git blob sha1 for small files and the
// sha256 of the content for LFS files; only the latter lets us check the bytes we received.
export function normalizeEtag(etag: string | null | undefined): string | undefined {
  if (!etag) return undefined;
  const v = etag
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
  return v.length > 0 ? v : undefined;
}

export function sha256FromEtag(etag: string | null | undefined): string | undefined {
  const v = normalizeEtag(etag)?.toLowerCase();
  return v && /^[0-9a-f]{64}$/.test(v) ? v : undefined;
}

/**
 * Where a pull keeps what it downloads: one folder per repo and revision under the data directory, so
 * an interrupted pull (of a model or of an SAE) finds its partial files and resumes.
 */
export function hubCacheDir(dataDir: string, repo: string, revision: string): string {
  validateRepoId(repo);
  return join(dataDir, 'hub', repo.replace('/', '--'), revision);
}
