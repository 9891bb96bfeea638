import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { lockDataDir } from './data-dir-lock.js';
import { PgliteWireServer } from './wire-server.js';

export {
  type SpawnEmbeddedPostgresOptions,
  type SpawnedEmbeddedPostgres,
  spawnEmbeddedPostgres,
} from './embedded-process.js';

export interface EmbeddedPostgres {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Persistent PGlite data directory; created if missing. */
  dataDir: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1; the server has no authentication, so keep it on loopback. */
  host?: string;
  /** Default 100, like Postgres. Clients share one backend, so this only bounds sockets. */
  maxConnections?: number;
  /**
   * A client that keeps a transaction open without sending anything blocks every other client
   * (one backend), so it is disconnected after this long. Default 60 s; 0 disables.
   */
  idleInTransactionTimeoutMs?: number;
  onError?: (err: Error) => void;
}

/**
 * Starts PGlite with pgvector on `dataDir` and serves it over the Postgres wire protocol.
 * Resolves once it accepts connections.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = resolve(opts.dataDir);
  const host = opts.host ?? '127.0.0.1';
  const lock = await lockDataDir(dataDir);
  let db: PGlite | undefined;
  try {
    db = await PGlite.create({ dataDir, extensions: { vector } });
    await db.exec('CREATE EXTENSION IF NOT EXISTS vector');
    const server = new PgliteWireServer(db, {
      host,
      port: opts.port ?? 0,
      maxConnections: opts.maxConnections ?? 100,
      idleInTransactionTimeoutMs: opts.idleInTransactionTimeoutMs ?? 60_000,
      onError: opts.onError,
    });
    const port = await server.listen();
    const started = db;
    let stopping: Promise<void> | undefined;
    const stop = async (): Promise<void> => {
      await server.close();
      await started.close();
      await lock.release();
    };
    return {
      url: postgresUrl(host, port),
      port,
      stop: () => {
        stopping ??= stop();
        return stopping;
      },
    };
  } catch (err) {
    await db?.close().catch(() => undefined);
    await lock.release();
    throw err;
  }
}

function postgresUrl(host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  // PGlite accepts any user and password and has a single database called postgres.
  return `postgres://postgres:postgres@${h}:${port}/postgres`;
}
