import fs from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, modelsDir } from '@loupe/common';

/** Starts the services in this process (today: capture) and runs until interrupted. */
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
  const { startCaptureService } = await import('@loupe/capture/service');
  const service = await startCaptureService();
  process.stderr.write(`loupe: capture service on ${service.address} (Ctrl-C to stop)\n`);
}
