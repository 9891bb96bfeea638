import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HfServer, startHfServer } from '@loupe/common/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DownloadProgress, downloadCheckpoint, type PullOptions } from './download.js';
import { GPT2_CHECKPOINT_FILES, hubFileUrl, sha256FromEtag } from './hf-files.js';

const REPO = 'tiny/gpt2';
let work: string;
let src: Record<string, string>;
let contents: Record<string, Buffer>;
let server: HfServer | undefined;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'loupe-hub-'));
  // Small git-style files plus a "weights" file large enough to be LFS on the fake hub.
  contents = {
    'config.json': Buffer.from(JSON.stringify({ n_layer: 1, n_embd: 8 })),
    'vocab.json': Buffer.from(JSON.stringify({ a: 0, b: 1 })),
    'merges.txt': Buffer.from('#version: 0.2\na b\n'),
    'model.safetensors': randomBytes(200_000),
  };
  src = {};
  await mkdir(join(work, 'src'));
  for (const [name, bytes] of Object.entries(contents)) {
    src[name] = join(work, 'src', name);
    await writeFile(src[name], bytes);
  }
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(work, { recursive: true, force: true });
});

function pullOpts(s: HfServer, extra: Partial<PullOptions> = {}): PullOptions {
  return {
    endpoint: s.url,
    repo: REPO,
    revision: 'main',
    destDir: join(work, 'out'),
    retryBaseMs: 5,
    ...extra,
  };
}

async function expectDownloaded(dest: string): Promise<void> {
  for (const name of GPT2_CHECKPOINT_FILES) {
    expect((await readFile(join(dest, name))).equals(contents[name])).toBe(true);
    expect(existsSync(join(dest, `${name}.incomplete`))).toBe(false);
  }
}

describe('hubFileUrl', () => {
  it('builds resolve URLs and encodes the revision as one segment', () => {
    expect(hubFileUrl('https://huggingface.co/', 'openai-community/gpt2', 'refs/pr/1', 'config.json')).toBe(
      'https://huggingface.co/openai-community/gpt2/resolve/refs%2Fpr%2F1/config.json',
    );
    expect(hubFileUrl('http://h', 'gpt2', 'main', 'model.safetensors')).toBe(
      'http://h/gpt2/resolve/main/model.safetensors',
    );
  });

  it('rejects repo ids that are not owner/name', () => {
    for (const bad of ['', 'a/b/c', '../etc', 'a b', 'x?y', 'owner/..']) {
      expect(() => hubFileUrl('http://h', bad, 'main', 'config.json')).toThrow(
        /invalid Hugging Face repo id/,
      );
    }
  });

  it('treats only 64-hex etags as sha256', () => {
    const h = 'a'.repeat(64);
    expect(sha256FromEtag(`W/"${h}"`)).toBe(h);
    expect(sha256FromEtag(`"${h.toUpperCase()}"`)).toBe(h);
    expect(sha256FromEtag('"0123456789abcdef0123456789abcdef01234567"')).toBeUndefined();
    expect(sha256FromEtag(null)).toBeUndefined();
  });
});

describe('downloadCheckpoint', () => {
  it('downloads all files, verifies sha256 and reports the commit', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } } });
    const progress: DownloadProgress[] = [];
    const result = await downloadCheckpoint(pullOpts(server, { onProgress: (p) => progress.push(p) }));
    await expectDownloaded(result.dir);
    expect(result.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(result.files.map((f) => f.file)).toEqual([...GPT2_CHECKPOINT_FILES]);
    for (const f of result.files) {
      expect(f.sha256).toBe(sha256(contents[f.file]));
      expect(f.bytes).toBe(contents[f.file].length);
    }
    const last = progress.filter((p) => p.file === 'model.safetensors').at(-1);
    expect(last).toEqual({ file: 'model.safetensors', receivedBytes: 200_000, totalBytes: 200_000 });
    // After the first HEAD names the commit, every later request asks for it, not for the branch.
    const later = server.requests.slice(1).map((r) => r.path);
    expect(later.every((p) => p.includes(`/resolve/${result.commit}/`))).toBe(true);
  });

  it('skips files that are already complete', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } } });
    await downloadCheckpoint(pullOpts(server));
    const before = server.requests.length;
    const again = await downloadCheckpoint(pullOpts(server));
    expect(server.requests.slice(before).every((r) => r.method === 'HEAD')).toBe(true);
    expect(again.files.find((f) => f.file === 'model.safetensors')?.sha256).toBe(
      sha256(contents['model.safetensors']),
    );
  });

  it('resumes an interrupted transfer with a Range request', async () => {
    server = await startHfServer({
      repos: { [REPO]: { files: src } },
      failOnce: { file: 'model.safetensors', afterBytes: 70_000 },
    });
    const result = await downloadCheckpoint(pullOpts(server));
    await expectDownloaded(result.dir);
    const gets = server.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/model.safetensors'));
    expect(gets).toHaveLength(2);
    expect(gets[0].range).toBeUndefined();
    expect(gets[1].range).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('resumes through the LFS redirect to the CDN', async () => {
    server = await startHfServer({
      repos: { [REPO]: { files: src } },
      lfsRedirect: true,
      failOnce: { file: 'model.safetensors', afterBytes: 50_000 },
    });
    const result = await downloadCheckpoint(pullOpts(server));
    await expectDownloaded(result.dir);
    const cdn = server.requests.filter((r) => r.path.startsWith('/cdn/'));
    expect(cdn.map((r) => r.method)).toEqual(['GET', 'GET']);
    expect(cdn[1].range).toMatch(/^bytes=[1-9]\d*-$/);
  });

  it('resumes a pre-existing .incomplete file', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } } });
    const dest = join(work, 'out');
    await mkdir(dest);
    await writeFile(
      join(dest, 'model.safetensors.incomplete'),
      contents['model.safetensors'].subarray(0, 12_345),
    );
    const result = await downloadCheckpoint(pullOpts(server));
    await expectDownloaded(result.dir);
    const get = server.requests.find((r) => r.method === 'GET' && r.path.endsWith('/model.safetensors'));
    expect(get?.range).toBe('bytes=12345-');
  });

  it('fails clearly on bytes that do not match the sha256 etag and keeps no file', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } }, lfsRedirect: true });
    // Same length, different bytes: the server keeps announcing the original sha256.
    await writeFile(src['model.safetensors'], randomBytes(200_000));
    const dest = join(work, 'out');
    await expect(downloadCheckpoint(pullOpts(server))).rejects.toThrow(/model\.safetensors: sha256 mismatch/);
    expect(existsSync(join(dest, 'model.safetensors'))).toBe(false);
    expect(existsSync(join(dest, 'model.safetensors.incomplete'))).toBe(false);
  });

  it('fails at once with a clear message for an unknown repo', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } } });
    await expect(downloadCheckpoint(pullOpts(server, { repo: 'nobody/nothing' }))).rejects.toThrow(
      'repository nobody/nothing not found or private at revision main',
    );
    expect(server.requests).toHaveLength(1);
  });

  it('names a missing revision or file', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: { 'config.json': src['config.json'] } } } });
    await expect(downloadCheckpoint(pullOpts(server, { revision: 'v9' }))).rejects.toThrow(
      'revision v9 not found in repository tiny/gpt2',
    );
    await expect(downloadCheckpoint(pullOpts(server))).rejects.toThrow(
      'file vocab.json not found in repository tiny/gpt2 at revision main',
    );
  });

  it('sends HF_TOKEN as a bearer token and asks for one on 401', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } }, token: 'hf_secret' });
    await expect(downloadCheckpoint(pullOpts(server))).rejects.toThrow(/set HF_TOKEN/);
    const result = await downloadCheckpoint(pullOpts(server, { token: 'hf_secret' }));
    await expectDownloaded(result.dir);
  });

  it('retries 5xx and honours Retry-After on 429', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } } });
    const statuses = [503, 429];
    const flaky: typeof fetch = async (input, init) => {
      const status = statuses.shift();
      if (status) return new Response(null, { status, headers: { 'retry-after': '0' } });
      return fetch(input, init);
    };
    const result = await downloadCheckpoint(pullOpts(server, { fetchImpl: flaky }));
    await expectDownloaded(result.dir);
  });

  it('drops a stalled body and resumes it', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } } });
    let stalled = false;
    const stalling: typeof fetch = async (input, init) => {
      if (stalled || init?.method !== 'GET' || !String(input).endsWith('/model.safetensors')) {
        return fetch(input, init);
      }
      stalled = true;
      // 10 000 bytes, then silence: no more data and no close, like a hung connection.
      const body = new ReadableStream<Uint8Array>({
        start: (c) => c.enqueue(new Uint8Array(contents['model.safetensors'].subarray(0, 10_000))),
      });
      return new Response(body, { status: 200, headers: { 'content-length': '200000' } });
    };
    const result = await downloadCheckpoint(pullOpts(server, { fetchImpl: stalling, stallTimeoutMs: 100 }));
    await expectDownloaded(result.dir);
    const get = server.requests.find((r) => r.method === 'GET' && r.path.endsWith('/model.safetensors'));
    expect(get?.range).toBe('bytes=10000-');
  });

  it('stops at once when aborted and keeps the partial file', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } } });
    const ac = new AbortController();
    const onProgress = (p: DownloadProgress) => {
      if (p.file === 'model.safetensors' && p.receivedBytes > 0) ac.abort(new Error('user cancelled'));
    };
    await expect(downloadCheckpoint(pullOpts(server, { signal: ac.signal, onProgress }))).rejects.toThrow(
      'user cancelled',
    );
    expect(existsSync(join(work, 'out', 'model.safetensors.incomplete'))).toBe(true);
    expect(existsSync(join(work, 'out', 'model.safetensors'))).toBe(false);
  });

  it('gives up after the configured retries', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } } });
    const down: typeof fetch = async () => new Response(null, { status: 502 });
    await expect(downloadCheckpoint(pullOpts(server, { fetchImpl: down, retries: 2 }))).rejects.toThrow(
      /config\.json: giving up after 2 retries: .*HTTP 502/,
    );
  });

  it('restarts when the server ignores the Range header', async () => {
    server = await startHfServer({ repos: { [REPO]: { files: src } } });
    const dest = join(work, 'out');
    await mkdir(dest);
    // Garbage prefix: if it were kept, the sha256 check would fail.
    await writeFile(join(dest, 'model.safetensors.incomplete'), randomBytes(1000));
    const noRange: typeof fetch = (input, init) => {
      const headers = { ...(init?.headers as Record<string, string>) };
      delete headers.range;
      return fetch(input, { ...init, headers });
    };
    const result = await downloadCheckpoint(pullOpts(server, { fetchImpl: noRange }));
    await expectDownloaded(result.dir);
    expect((await stat(join(dest, 'model.safetensors'))).size).toBe(200_000);
  });
});
