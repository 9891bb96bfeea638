import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest folder above this file (in src or in dist) that declares workspaces. */
export const REPO_ROOT = findRepoRoot(path.dirname(fileURLToPath(import.meta.url)));

function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && 'workspaces' in JSON.parse(readFileSync(manifest, 'utf8'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no workspace root above ${from}`);
  }
}

/**
 * Test files run in parallel worker processes, and a port is only free until someone binds it: two
 * workers asking the kernel for "any free port" can be handed the same one between the check and the
 * service's bind (seen: a capture client reaching another file's SAE service). So each worker takes
 * ports from a range of its own (by VITEST_POOL_ID), below the kernel's ephemeral range, starting at a
 * random point and never handing out the same port twice.
 */
const RANGE = 1500;
const FIRST_PORT = 20_000;
const WORKER = Number(process.env.VITEST_POOL_ID ?? 0) % 8;
const handedOut = new Set<number>();
let cursor = Math.floor(Math.random() * RANGE);

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < RANGE; tries++) {
    const port = FIRST_PORT + WORKER * RANGE + (cursor++ % RANGE);
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port left in this test worker's range ${FIRST_PORT + WORKER * RANGE}+${RANGE}`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface RunningProcess {
  child: ChildProcess;
  /** everything the process wrote to stderr so far (its JSON log) */
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts a compiled entry point of the repository as a real child process. */
export function startProcess(
  entry: string,
  env: Record<string, string>,
  args: string[] = [],
): RunningProcess {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, entry), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout?.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Runs the `loupe` CLI to completion. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runNode(path.join(REPO_ROOT, 'services/cli/dist/main.js'), args, env);
}

/** Runs a Node.js script of the repository to completion. */
export async function runNode(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}
