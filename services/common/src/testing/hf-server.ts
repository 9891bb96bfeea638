// A stand-in for the Hugging Face hub's resolve/ endpoint, for tests of `loupe model pull`.
//
// It speaks the parts of the protocol the downloader depends on: HEAD and GET on
// /<repo>/resolve/<rev>/<file>, Range requests, the hub's etags (sha256 for LFS-sized files, git blob
// sha1 for small ones), x-repo-commit, X-Error-Code on 404s, and optionally the 302 to a CDN that
// LFS files get, with x-linked-etag / x-linked-size on it.
//
// Sizes and etags are computed once at start, but bytes are read from disk on every request, so a test
// can overwrite a file after start (same length, different bytes) to play a corrupted server.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HfServerRepo {
  /** Branch name served; the derived commit sha is accepted as a revision too. Default 'main'. */
  revision?: string;
  /** Repo path -> file on disk. */
  files: Record<string, string>;
}

export interface HfServerOptions {
  repos: Record<string, HfServerRepo>;
  /** The first GET of this file sends `afterBytes` bytes of the body, then destroys the socket. */
  failOnce?: { file: string; afterBytes: number };
  /** Serve LFS-sized files (over 1 KB) through a 302 to /cdn/<sha256>, as the real hub does. */
  lfsRedirect?: boolean;
  /** When set, requests to resolve/ without `Authorization: Bearer <token>` get a 401. */
  token?: string;
}

export interface HfServerRequest {
  method: string;
  path: string;
  range?: string;
}

export interface HfServer {
  url: string;
  requests: HfServerRequest[];
  close(): Promise<void>;
}

// The hub stores files above a size threshold in LFS; 1 KB keeps test fixtures small.
const LFS_THRESHOLD = 1024;
const FAIL_DELAY_MS = 100;

interface ServedFile {
  repo: string;
  name: string;
  diskPath: string;
  size: number;
  sha256: string;
  lfs: boolean;
  etag: string;
}

interface ServedRepo {
  revision: string;
  commit: string;
  files: Map<string, ServedFile>;
}

export async function startHfServer(opts: HfServerOptions): Promise<HfServer> {
  const repos = new Map<string, ServedRepo>();
  const byHash = new Map<string, ServedFile>();
  for (const [repo, spec] of Object.entries(opts.repos)) {
    const revision = spec.revision ?? 'main';
    const files = new Map<string, ServedFile>();
    for (const [name, diskPath] of Object.entries(spec.files)) {
      const bytes = await readFile(diskPath);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const lfs = bytes.length > LFS_THRESHOLD;
      // A git blob id is sha1("blob <len>\0" + content): what the hub sends for files kept in git.
      const blob = createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
      const file = { repo, name, diskPath, size: bytes.length, sha256, lfs, etag: lfs ? sha256 : blob };
      files.set(name, file);
      byHash.set(sha256, file);
    }
    const commit = createHash('sha1').update(`${repo}@${revision}`).digest('hex');
    repos.set(repo, { revision, commit, files });
  }

  const requests: HfServerRequest[] = [];
  let failPending = opts.failOnce;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const range = req.headers.range;
    requests.push({ method: req.method ?? 'GET', path: url.pathname, ...(range ? { range } : {}) });
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }

    const cdn = url.pathname.match(/^\/cdn\/([0-9a-f]{64})$/);
    if (cdn) {
      const file = byHash.get(cdn[1]);
      if (!file) return notFound(res, 'EntryNotFound', 'no such object');
      return sendFile(req, res, file, {});
    }

    const m = url.pathname.match(/^\/(.+?)\/resolve\/([^/]+)\/(.+)$/);
    if (!m) return notFound(res, 'RepoNotFound', 'not a resolve URL');
    const [repoId, rev, name] = [
      m[1],
      decodeURIComponent(m[2]),
      m[3].split('/').map(decodeURIComponent).join('/'),
    ];
    const repo = repos.get(repoId);
    if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
      res.writeHead(401, { 'x-error-code': 'RepoNotFound', 'x-error-message': 'Invalid credentials' }).end();
      return;
    }
    if (!repo) return notFound(res, 'RepoNotFound', 'Repository not found');
    if (rev !== repo.revision && rev !== repo.commit)
      return notFound(res, 'RevisionNotFound', 'Invalid rev id');
    const file = repo.files.get(name);
    if (!file) return notFound(res, 'EntryNotFound', 'Entry not found');

    const hubHeaders = { 'x-repo-commit': repo.commit, etag: `"${file.etag}"` };
    if (opts.lfsRedirect && file.lfs) {
      res
        .writeHead(302, {
          ...hubHeaders,
          location: `/cdn/${file.sha256}`,
          'x-linked-etag': `"${file.sha256}"`,
          'x-linked-size': String(file.size),
        })
        .end();
      return;
    }
    sendFile(req, res, file, hubHeaders);
  });

  function sendFile(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    file: ServedFile,
    headers: Record<string, string>,
  ): void {
    const base = { ...headers, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    let start = 0;
    let end = file.size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range) {
      const r = range.match(/^bytes=(\d+)-(\d*)$/);
      const s = r ? Number(r[1]) : Number.NaN;
      const e = r?.[2] ? Math.min(Number(r[2]), file.size - 1) : file.size - 1;
      if (!r || s >= file.size || s > e) {
        res.writeHead(416, { ...base, 'content-range': `bytes */${file.size}` }).end();
        return;
      }
      [start, end, status] = [s, e, 206];
    }
    const length = end - start + 1;
    res.writeHead(status, {
      ...base,
      'content-length': String(length),
      ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${file.size}` } : {}),
    });
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    if (req.method === 'GET' && failPending?.file === file.name && failPending.afterBytes < length) {
      const cut = failPending.afterBytes;
      failPending = undefined;
      readFile(file.diskPath).then(
        (bytes) => {
          // Flush the first bytes, then drop the connection mid-body like a network failure would. The
          // pause lets the client read them first: an erroring fetch body discards chunks not yet read,
          // and the tests want to see those bytes kept and the transfer resumed.
          res.write(bytes.subarray(start, start + cut), () => {
            setTimeout(() => res.socket?.destroy(), FAIL_DELAY_MS);
          });
        },
        (err: Error) => res.destroy(err),
      );
      return;
    }
    createReadStream(file.diskPath, { start, end }).pipe(res);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

function notFound(res: http.ServerResponse, code: string, message: string): void {
  res.writeHead(404, { 'x-error-code': code, 'x-error-message': message }).end();
}
