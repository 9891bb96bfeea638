import path from 'node:path';
import { UserInputError } from '@loupe/common';
import { type DownloadedFile, downloadHubFiles, HubDownloadError, type PullOptions } from '@loupe/model';
import { CFG_FILE, SPARSITY_FILE, WEIGHTS_FILE } from '../format/saelens.js';

/**
 * Names SAELens releases have given the per-latent sparsity file, newest first. Only the first found is
 * taken; it is stored under SPARSITY_FILE.
 */
const SPARSITY_FILES = [SPARSITY_FILE, 'feature_sparsity.safetensors'];

export interface SaeFilesPull extends Omit<PullOptions, 'destDir'> {
  /** the SAE's folder in the repository ('' or undefined: the repository's root) */
  subfolder?: string;
  /** where the repository's files are mirrored (hubCacheDir), so an interrupted pull resumes */
  cacheDir: string;
  /** looks at the downloaded cfg.json before the weights are fetched; throws to stop the pull */
  checkCfg?: (cfgFile: string) => Promise<void>;
}

export interface PulledSaeFiles {
  /** the local SAELens folder: cfg.json, sae_weights.safetensors and perhaps a sparsity file */
  dir: string;
  files: DownloadedFile[];
  /** where the sparsity file is in `dir`, when the repository had one */
  sparsityFile?: string;
  commit?: string;
}

/**
 * Downloads one SAELens SAE (cfg.json and sae_weights.safetensors in a folder of a hub repository,
 * and its sparsity file when there is one) with the model pull's downloader: resumable, size and
 * sha256 checked, retried.
 */
export async function downloadSaeFiles(opts: SaeFilesPull): Promise<PulledSaeFiles> {
  const folder = checkSubfolder(opts.subfolder ?? '');
  const inRepo = (file: string) => (folder ? `${folder}/${file}` : file);
  const { subfolder: _, cacheDir, checkCfg, ...pull } = opts;
  const cfg = await downloadHubFiles({ ...pull, destDir: cacheDir }, [inRepo(CFG_FILE)]).catch(
    (err: unknown) => {
      throw explainMissing(err, opts, folder);
    },
  );
  const dir = path.join(cacheDir, ...folder.split('/').filter(Boolean));
  // A mismatch with the model shows in cfg.json: say so before fetching perhaps gigabytes of weights.
  await checkCfg?.(path.join(dir, CFG_FILE));
  // Later files are asked of the commit cfg.json came from, so all are of one version.
  const revision = cfg.commit ?? pull.revision;
  const weights = await downloadHubFiles({ ...pull, revision, destDir: cacheDir }, [
    inRepo(WEIGHTS_FILE),
  ]).catch((err: unknown) => {
    throw explainMissing(err, opts, folder);
  });
  const files = [...cfg.files, ...weights.files];
  let sparsityFile: string | undefined;
  for (const name of SPARSITY_FILES) {
    try {
      const got = await downloadHubFiles({ ...pull, revision, destDir: cacheDir }, [inRepo(name)]);
      files.push(...got.files);
      sparsityFile = name;
      break;
    } catch (err) {
      if (!(err instanceof HubDownloadError && err.status === 404)) throw err;
    }
  }
  return {
    dir,
    files,
    ...(sparsityFile ? { sparsityFile } : {}),
    ...(cfg.commit ? { commit: cfg.commit } : {}),
  };
}

/** A folder inside the repository; it becomes part of a local path, so it must stay inside. */
function checkSubfolder(given: string): string {
  const folder = given.replace(/^\/+|\/+$/g, '');
  if (folder === '') return '';
  const parts = folder.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..' || !/^[A-Za-z0-9._=+,@-]+$/.test(p)))
    throw new UserInputError(
      `--path "${given}" is not a folder of the repository: use its path with '/' between folder names made of letters, digits and . _ - = + , @ (not '.' or '..')`,
    );
  return folder;
}

function explainMissing(err: unknown, opts: SaeFilesPull, folder: string): unknown {
  if (!(err instanceof HubDownloadError) || err.status !== 404 || !err.file) return err;
  if (!err.message.startsWith(`file ${err.file} not found`)) return err;
  return new HubDownloadError(
    `${err.message}: an SAELens SAE is a folder with ${CFG_FILE} and ${WEIGHTS_FILE}; ${
      folder
        ? `check --path ${folder}`
        : 'if the repository holds several SAEs, name one with --path <folder>'
    } (repository ${opts.repo})`,
    err.file,
    404,
  );
}
