import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { type LoupeConfig, loadConfig, modelsDir } from '@loupe/common';

/** Starts the services in this process (capture, then SAE) and runs until interrupted. */
export async function serve(): Promise<void> {
  const config = loadConfig();
  const modelDir = config.model.includes('/')
    ? path.resolve(config.model)
    : path.join(modelsDir(config), config.model);
  const present = await fs.access(path.join(modelDir, 'manifest.json')).then(
    () => true,
    () => false,
  );
  if (!present) {
    process.stderr.write(
      `loupe: no model at ${modelDir} yet; requests will say so until one is there. Get one with\n` +
        `  npx loupe model pull ${config.model}\n` +
        `or, offline: npm run fixtures -- tiny && npx loupe model convert tests/.fixtures/tiny --out ${modelDir}\n`,
    );
  }
  await startEmbeddedDatabase(config);
  const { startCaptureService } = await import('@loupe/capture/service');
  const capture = await startCaptureService();
  const { startSaeService } = await import('@loupe/sae/service');
  const sae = await startSaeService();
  process.stderr.write(
    `loupe: capture service on ${capture.address}, SAE service on ${sae.address} (Ctrl-C to stop)\n`,
  );
}

/**
 * Without DATABASE_URL the services share one embedded Postgres. Started here, once, so two services
 * opening their schemas at the same moment do not both try to start it; it stops with this process.
 */
async function startEmbeddedDatabase(config: LoupeConfig): Promise<void> {
  if (config.databaseUrl) return;
  const inUse = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: config.embeddedPgPort });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
  if (inUse) return; // another `loupe serve` (or a database someone started) already serves it
  const { spawnEmbeddedPostgres } = await import('@loupe/common/db');
  const db = await spawnEmbeddedPostgres({
    dataDir: path.join(config.dataDir, 'pg'),
    port: config.embeddedPgPort,
  });
  process.stderr.write(`loupe: embedded Postgres on ${db.url.replace(/\/\/[^@]*@/, '//')}\n`);
}
