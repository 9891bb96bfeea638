import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES } from '../fixtures/index.js';
import { convertedFixture } from '../support/model.js';
import { REPO_ROOT, startProcess } from '../support/process.js';
import { portOpen, serveEnv } from '../support/serve.js';

// `npm start` as people run it: npm itself does not pass SIGTERM on to a script's shell, so the start
// script execs node; SIGTERM to the npm process must stop loupe serve, the embedded Postgres and the
// web app, leaving no port open and no process behind. A second `loupe serve` on the same data
// directory says who holds it instead of failing halfway through.

let dataDir: string;
let env: Record<string, string>;
let npm: ChildProcess | undefined;
let servePid: number | undefined;
let stderr = '';

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-serve-lifecycle-'));
  const { modelDir } = await convertedFixture(FIXTURES.tiny);
  await fs.mkdir(path.join(dataDir, 'models'), { recursive: true });
  await fs.rename(modelDir, path.join(dataDir, 'models', 'tiny'));
  env = await serveEnv(dataDir, { LOUPE_THREADS: '1', LOUPE_MODEL: 'tiny' });
});

afterAll(async () => {
  // after a failed assertion: stop loupe serve itself (it stops its database and web app), then npm
  if (servePid !== undefined && processAlive(servePid)) {
    process.kill(servePid, 'SIGTERM');
    for (let i = 0; i < 120 && processAlive(servePid); i++) await new Promise((r) => setTimeout(r, 250));
  }
  if (npm && npm.exitCode === null) npm.kill('SIGKILL');
  await fs.rm(dataDir, { recursive: true, force: true });
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose parent is `pid`, from /proc (Linux). */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // the parent pid is the 4th field, after the command in parentheses
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) out.push(Number(entry));
  }
  return out;
}

describe('loupe serve under npm start', () => {
  it('refuses a second serve on the same data directory, and stops everything on SIGTERM to npm', async () => {
    npm = spawn('npm', ['start'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    npm.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => npm?.once('exit', (code) => resolve(code)));
    for (let i = 0; i < 600 && !stderr.includes('Loupe is running'); i++)
      await new Promise((resolve) => setTimeout(resolve, 250));
    expect(stderr, stderr).toContain('Loupe is running');

    // the process tree under npm: loupe serve, and below it the embedded Postgres and the web app
    const serve = await childrenOf(npm.pid ?? -1);
    expect(serve).toHaveLength(1);
    servePid = serve[0];
    const below = await childrenOf(serve[0]);
    expect(below.length).toBeGreaterThanOrEqual(1);

    const second = startProcess('services/cli/dist/main.js', env, ['serve']);
    const secondCode = await new Promise<number | null>((resolve) => second.child.once('exit', resolve));
    expect(secondCode).not.toBe(0);
    expect(second.stderr()).toMatch(
      new RegExp(`data directory .* is in use by process ${serve[0]} .*another loupe serve runs on it`),
    );

    npm.kill('SIGTERM');
    await exited;
    for (let i = 0; i < 120 && [serve[0], ...below].some(processAlive); i++)
      await new Promise((resolve) => setTimeout(resolve, 250));
    expect([serve[0], ...below].filter(processAlive)).toEqual([]);
    for (const port of [
      env.LOUPE_WEB_PORT,
      env.LOUPE_GATEWAY_PORT,
      env.LOUPE_EMBEDDED_PG_PORT,
      env.LOUPE_CAPTURE_ADDR.split(':')[1],
      env.LOUPE_SAE_ADDR.split(':')[1],
      env.LOUPE_EXPLAINER_ADDR.split(':')[1],
    ])
      expect(await portOpen(Number(port)), `port ${port}`).toBe(false);
  });
});
