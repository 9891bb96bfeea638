import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { EmbeddedPostgres } from './embedded.js';

// Runs the embedded database as its own process so that a service and the database can crash
// (or be kill -9'd) independently, as they would with a real Postgres server.

export interface SpawnedEmbeddedPostgres extends EmbeddedPostgres {
  pid: number;
  /** Settles when the process has exited, whatever the reason (stop(), a signal, a crash). */
  exited: Promise<void>;
}

export interface SpawnEmbeddedPostgresOptions {
  dataDir: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  host?: string;
  /** Default 60 s: a first start runs initdb, which takes several seconds. */
  startTimeoutMs?: number;
}

/**
 * Spawns `node dist/db/embedded-server.js` and resolves once it accepts connections. The child
 * stops when this process goes away (its stdin closes), so a crashed test or supervisor leaves no
 * orphan holding the data dir; a database that must outlive its parent is started by running the
 * entry directly.
 */
export async function spawnEmbeddedPostgres(
  opts: SpawnEmbeddedPostgresOptions,
): Promise<SpawnedEmbeddedPostgres> {
  const args = [
    embeddedServerScript(),
    '--data-dir',
    resolve(opts.dataDir),
    '--port',
    String(opts.port ?? 0),
    '--host',
    opts.host ?? '127.0.0.1',
    '--stop-on-stdin-close',
  ];
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const pid = child.pid;
  if (pid === undefined) throw new Error('embedded Postgres: could not spawn node');

  let ready = false;
  let stderrTail = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderrTail = (stderrTail + text).slice(-4000);
    // After start-up the server only writes to stderr when something went wrong: pass it on.
    if (ready) process.stderr.write(text);
  });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));

  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `embedded Postgres did not start within ${opts.startTimeoutMs ?? 60_000} ms: ${stderrTail}`,
        ),
      );
    }, opts.startTimeoutMs ?? 60_000);
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const event = parseEvent(line);
      if (event?.event === 'ready' && typeof event.url === 'string') {
        ready = true;
        clearTimeout(timer);
        resolveUrl(event.url);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(
          `embedded Postgres exited before it was ready (${signal ?? `code ${code}`}): ${stderrTail}`,
        ),
      );
    });
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(killer);
  };
  return { url, port: Number(new URL(url).port), pid, exited, stop };
}

/** The compiled server entry: next to this file in dist/, or in dist/ when running from src/ under vitest. */
export function embeddedServerScript(): string {
  const candidates = ['./embedded-server.js', '../../dist/db/embedded-server.js'].map((p) =>
    fileURLToPath(new URL(p, import.meta.url)),
  );
  const found = candidates.find((p) => existsSync(p));
  if (found) return found;
  throw new Error(
    `embedded Postgres server entry not found (looked for ${candidates.join(', ')}); run npm run build first`,
  );
}

function parseEvent(line: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
