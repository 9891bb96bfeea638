import http from 'node:http';
import type { Logger } from '../logging.js';
import { checkReadiness } from './readiness.js';
import { metricsText } from './registry.js';

export interface HealthHttpAnswer {
  status: number;
  contentType: string;
  body: string;
}

/**
 * The answers of GET /metrics, /healthz and /readyz, shared by the gRPC services' listener and the
 * gateway (which serves them on its own port). /healthz: the process is up and answering; /readyz:
 * every service of the process can serve, else 503 with the reasons.
 */
export async function healthHttpAnswer(pathname: string): Promise<HealthHttpAnswer | null> {
  if (pathname === '/metrics') {
    const { contentType, body } = await metricsText();
    return { status: 200, contentType, body };
  }
  if (pathname === '/healthz') return json(200, { status: 'ok' });
  if (pathname === '/readyz') {
    const readiness = await checkReadiness();
    return json(readiness.ready ? 200 : 503, {
      status: readiness.ready ? 'ready' : 'not ready',
      reasons: readiness.reasons,
    });
  }
  return null;
}

function json(status: number, value: unknown): HealthHttpAnswer {
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(value) };
}

export interface MetricsListener {
  port: number;
  close(): Promise<void>;
}

let running: Promise<MetricsListener> | null = null;

/**
 * Serves /metrics, /healthz and /readyz on `port` (all interfaces, for Prometheus and probes). Once
 * per process: `loupe serve` starts three gRPC services, which share this one listener.
 */
export function startMetricsListener(port: number, log: Logger): Promise<MetricsListener> {
  running ??= listen(port, log);
  running.catch(() => {
    running = null;
  });
  return running;
}

function listen(port: number, log: Logger): Promise<MetricsListener> {
  const server = http.createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    const answer = req.method === 'GET' ? healthHttpAnswer(pathname) : Promise.resolve(null);
    answer.then(
      (a) => {
        const { status, contentType, body } = a ?? {
          status: 404,
          contentType: 'text/plain',
          body: 'GET /metrics, /healthz or /readyz\n',
        };
        res.writeHead(status, { 'content-type': contentType }).end(body);
      },
      (error: Error) => {
        log.error({ err: error.message }, 'metrics listener failed to answer');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `LOUPE_METRICS_PORT=${port}: cannot listen for /metrics (${error.code ?? error.message}); choose another port`,
        ),
      ),
    );
    // never what keeps a process alive: it stops with the services it reports on
    server.unref();
    server.listen(port, () => {
      const bound = (server.address() as { port: number }).port;
      log.info({ port: bound }, 'metrics, /healthz and /readyz listening');
      resolve({
        port: bound,
        close: () =>
          new Promise<void>((done) => {
            running = null;
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
