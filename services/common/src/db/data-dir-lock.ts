import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

// PGlite takes no lock on its data directory: a second PGlite opens the same directory happily
// (checked with 0.5.14) and two writers would corrupt it. Real Postgres refuses through
// postmaster.pid; this lock file does the same job for the embedded server.

const LOCK_NAME = 'loupe-embedded.lock';

export interface DataDirLock {
  release(): Promise<void>;
}

export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, LOCK_NAME);
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
        throw new Error(
          `embedded Postgres data dir ${dataDir} is in use by process ${holder} (lock file ${path})`,
        );
      }
      // Left behind by a process that died without stopping (kill -9): take it over.
      await rm(path, { force: true });
    }
  }
  throw new Error(`could not lock embedded Postgres data dir ${dataDir} (lock file ${path})`);
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
