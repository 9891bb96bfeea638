import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { REPO_ROOT } from './process.js';

/** Debian's Chromium (installed by .ci/run with apt); never a downloaded browser. */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless Chromium (playwright gives it a fresh temporary profile) that reaches no network on its own. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface RunningWeb {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * `next start` of the built web app (web/.next from `npm run build`) as its own process group: Next leaves
 * a `next-server` child behind, so stopping signals the whole group.
 */
export async function startWeb(port: number, env: Record<string, string>): Promise<RunningWeb> {
  const child: ChildProcess = spawn(
    process.execPath,
    [path.join(REPO_ROOT, 'node_modules/next/dist/bin/next'), 'start', '-p', String(port), '-H', '127.0.0.1'],
    {
      cwd: path.join(REPO_ROOT, 'web'),
      env: { ...process.env, ...env, NEXT_TELEMETRY_DISABLED: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const up = await fetch(`${url}/_not-found`).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (i > 240 || child.exitCode !== null) throw new Error(`web did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.pid) process.kill(-child.pid, 'SIGTERM');
      await exited;
    },
  };
}
