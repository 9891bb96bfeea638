import net from 'node:net';
import { freePort } from './process.js';

/**
 * The environment of a `loupe serve` under test: every port free and its own, the hub on a closed port
 * (offline as far as Hugging Face goes), no LLM, and the embedded Postgres that `loupe serve` starts:
 * the tests that use this have the embedded default as their subject, so they keep it even when
 * LOUPE_TEST_DATABASE_URL names a real server.
 */
export async function serveEnv(
  dataDir: string,
  overrides: Record<string, string> = {},
): Promise<Record<string, string>> {
  const [capture, sae, explainer, gateway, web, pg, hub] = await Promise.all(
    Array.from({ length: 7 }, () => freePort()),
  );
  return {
    LOUPE_DATA_DIR: dataDir,
    HF_ENDPOINT: `http://127.0.0.1:${hub}`,
    LOUPE_CAPTURE_ADDR: `127.0.0.1:${capture}`,
    LOUPE_SAE_ADDR: `127.0.0.1:${sae}`,
    LOUPE_EXPLAINER_ADDR: `127.0.0.1:${explainer}`,
    LOUPE_GATEWAY_PORT: String(gateway),
    LOUPE_WEB_PORT: String(web),
    LOUPE_EMBEDDED_PG_PORT: String(pg),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '2',
    LOUPE_MODEL: 'gpt2',
    LOUPE_LLM_BASE_URL: '',
    DATABASE_URL: '',
    ...overrides,
  };
}

/** Whether something accepts connections on the loopback port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
