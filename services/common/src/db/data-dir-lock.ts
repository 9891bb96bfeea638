import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LoupeError } from '../errors.js';

// PGlite takes no lock on its data directory: a second PGlite opens the same directory happily
// (checked with 0.5.14) and two writers would corrupt it. Real Postgres refuses through
// postmaster.pid; this lock file does the same job for the embedded server.

const LOCK_NAME = 'loupe-embedded.lock';

export interface DataDirLock {
  release(): Promise<void>;
}

/**
 * Takes `dataDir` for this process, or says which live process holds it. `what` names the directory
 * in that message; `lockName` lets different owners (the embedded server, `loupe serve`) lock the same
 * directory independently.
 */
export async function lockDataDir(
  dataDir: string,
  what = 'embedded Postgres data dir',
  lockName = LOCK_NAME,
): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, lockName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return { release: () => rm(path, { force: true }) };
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && isAlive(holder)) {
        throw new LoupeError(
          `${what} ${dataDir} is in use by process ${holder} (lock file ${path})`,
          'UNAVAILABLE',
        );
      }
      // Left behind by a process that died without stopping (kill -9): take it over.
      await rm(path, { force: true });
    }
  }
  throw new LoupeError(`could not lock ${what} ${dataDir} (lock file ${path})`, 'UNAVAILABLE');
}

function isAlreadyExists(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'EEXIST';
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else, which still means the directory is taken.
    return err instanceof Error && 'code' in err && err.code === 'EPERM';
  }
}
