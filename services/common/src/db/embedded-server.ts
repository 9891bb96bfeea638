// Runs the embedded Postgres as a process of its own:
//   node services/common/dist/db/embedded-server.js --data-dir DIR [--port N] [--host H]
// Prints one JSON line {"event":"ready","url":...} on stdout once it accepts connections and
// stops cleanly (data flushed, lock released) on SIGTERM or SIGINT.
import { parseArgs } from 'node:util';
import { startEmbeddedPostgres } from './embedded.js';

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function positiveInt(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number >= 0, got ${text}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'max-connections': { type: 'string' },
      'idle-in-transaction-timeout-ms': { type: 'string' },
      // Set by spawnEmbeddedPostgres: a parent that dies closes our stdin, and we follow it.
      'stop-on-stdin-close': { type: 'boolean', default: false },
    },
  });
  const dataDir = values['data-dir'];
  if (!dataDir) throw new Error('--data-dir DIR is required');
  const db = await startEmbeddedPostgres({
    dataDir,
    port: positiveInt('port', values.port),
    host: values.host,
    maxConnections: positiveInt('max-connections', values['max-connections']),
    idleInTransactionTimeoutMs: positiveInt(
      'idle-in-transaction-timeout-ms',
      values['idle-in-transaction-timeout-ms'],
    ),
    onError: (err) => process.stderr.write(`${JSON.stringify({ event: 'error', message: err.message })}\n`),
  });

  let stopping = false;
  const shutdown = async (reason: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    try {
      await db.stop();
      emit({ event: 'stopped', reason });
      process.exit(0);
    } catch (err) {
      process.stderr.write(
        `embedded Postgres: stop failed: ${err instanceof Error ? err.stack : String(err)}\n`,
      );
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  if (values['stop-on-stdin-close']) {
    process.stdin.on('end', () => void shutdown('parent gone'));
    process.stdin.on('error', () => void shutdown('parent gone'));
    process.stdin.resume();
  }
  // A parent that stopped reading our stdout must not crash us while we shut down.
  process.stdout.on('error', () => undefined);
  emit({ event: 'ready', url: db.url, port: db.port, pid: process.pid });
}

main().catch((err: unknown) => {
  process.stderr.write(`embedded Postgres: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
