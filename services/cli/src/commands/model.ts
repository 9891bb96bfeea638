import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, modelsDir } from '@loupe/common';
import { convertCheckpoint, downloadCheckpoint, hubCacheDir } from '@loupe/model';
import { progressBar } from '../progress.js';
import { printJson } from '../run-command.js';

export async function convert(
  dir: string,
  options: { out: string; name?: string; force?: boolean },
): Promise<void> {
  const bar = progressBar('converting');
  const manifest = await convertCheckpoint(dir, options.out, {
    name: options.name,
    force: options.force,
    onProgress: (done, total) => bar.update(done, total, 'tensors'),
  }).finally(() => bar.stop());
  await printJson({
    model: path.resolve(options.out),
    name: manifest.name,
    dims: manifest.dims,
    hooks: manifest.hooks.length,
  });
}

export async function pull(
  repo: string,
  options: { revision: string; out?: string; force?: boolean },
): Promise<void> {
  const config = loadConfig();
  const out = options.out ?? path.join(modelsDir(config), repo.split('/').pop() ?? repo);
  // Downloads go to a cache folder keyed by repo and revision, so an interrupted pull resumes.
  const cache = hubCacheDir(config.dataDir, repo, options.revision);
  await fs.mkdir(cache, { recursive: true });
  const bar = progressBar('downloading');
  const downloaded = await downloadCheckpoint({
    endpoint: config.hfEndpoint,
    repo,
    revision: options.revision,
    destDir: cache,
    token: config.hfToken,
    onProgress: (p) => bar.update(p.receivedBytes, p.totalBytes ?? p.receivedBytes, p.file),
  }).finally(() => bar.stop());
  process.stderr.write(`downloaded ${downloaded.files.length} files to ${cache}${os.EOL}`);
  const manifest = await convertCheckpoint(cache, out, {
    name: path.basename(out),
    force: options.force,
    source: { repo, revision: options.revision, commit: downloaded.commit },
  });
  await printJson({ model: path.resolve(out), name: manifest.name, source: manifest.source });
}
