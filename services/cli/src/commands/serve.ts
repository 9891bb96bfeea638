import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  childEnvironment,
  createLogger,
  type Logger,
  type LoupeConfig,
  loadConfig,
  UserInputError,
} from '@loupe/common';
import { captureServiceClient, explainerServiceClient, saeServiceClient } from '@loupe/common/grpc';
import { chooseModel, hasModel, type ModelChoice, makeOfflineModel, modelDir } from '../demo/model.js';
import { runDemo } from '../demo/run.js';
import { workspaceFile } from '../demo/state.js';
import { NEST_SHUTDOWN_SIGNALS } from '../nest-signals.js';

interface Running {
  name: string;
  close(): Promise<void>;
}

/**
 * `loupe serve` (what `npm start` runs): the embedded Postgres (unless DATABASE_URL is set), the
 * capture, SAE and explainer gRPC services and the GraphQL gateway, each a child process (so they use
 * the machine's cores, as in every other deployment; they share the embedded Postgres over its socket
 * like separate deployments share a server), the web app as a child process, and in the background
 * the model (pulled, or made offline) and the demo workspace. Runs until SIGINT or SIGTERM, then
 * stops all of it and exits 0. LOUPE_METRICS_PORT goes to the capture service's process only (one
 * port, one listener).
 */
export async function serve(): Promise<void> {
  const config = loadConfig();
  const log = createLogger('serve', config.logLevel);
  const running: Running[] = [];
  const demoStop = new AbortController();
  let demo: Promise<unknown> = Promise.resolve();
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`loupe: ${signal}: stopping\n`);
    demoStop.abort();
    await Promise.race([demo, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    // last started, first stopped: the web app and gateway go before the services they call
    for (const part of running.reverse()) {
      await part
        .close()
        .catch((error: Error) => log.warn({ part: part.name, err: error.message }, 'stop failed'));
    }
    process.exit(0);
  };
  const onSignal = (signal: NodeJS.Signals) => void stop(signal);

  try {
    running.push(await lockServeDir(config));
    running.push(...(await startEmbeddedDatabase(config)));
    const model = await chooseModel(config);
    if (model.offline) log.warn({ model: model.name }, model.reason);
    // each service in its own process (serve-child.ts): one event loop per service, on every core
    // an empty variable is an unset one: the metrics port is the capture process's alone
    const noMetrics = { LOUPE_METRICS_PORT: '' };
    running.push(await startChild('capture', config.captureAddress, { LOUPE_MODEL: model.name }));
    running.push(await startChild('sae', config.saeAddress, noMetrics));
    running.push(await startChild('explainer', config.explainerAddress, noMetrics));
    running.push(await startChild('gateway', `127.0.0.1:${config.gatewayPort}`, noMetrics));
    const gateway = { url: `http://127.0.0.1:${config.gatewayPort}/graphql` };
    const web = await startWeb(config, log);
    if (web.running) running.push(web.running);

    // Nest's shutdown hooks re-raise the signal after closing their own app; this process closes every
    // part in order itself and then exits 0.
    for (const signal of NEST_SHUTDOWN_SIGNALS) process.removeAllListeners(signal);
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

    printSummary(config, model, {
      web: web.url,
      webNote: web.note,
      graphql: gateway.url,
      capture: { address: config.captureAddress },
      sae: { address: config.saeAddress },
      explainer: { address: config.explainerAddress },
    });
    demo = prepareWorkspace(config, model, demoStop.signal, log);
  } catch (error) {
    for (const part of running.reverse()) await part.close().catch(() => {});
    throw error;
  }
}

const SERVE_CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'serve-child.js');

/**
 * One service as a child process (serve-child.ts), started once it says it listens. Its log goes to
 * this process's stderr. Closing it sends SIGTERM and waits for it to exit (SIGKILL after 15 s).
 */
async function startChild(name: string, address: string, env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [SERVE_CHILD, name], {
    // the environment passes through, as to the web app; `env` adds this service's own settings
    env: childEnvironment(env),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const close = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
  };
  const ready = await new Promise<boolean>((resolve) => {
    child.once('message', (message) => resolve(message === 'ready'));
    child.once('exit', () => resolve(false));
  });
  if (!ready) {
    await close();
    throw new Error(
      `the ${name} service did not start (exit code ${child.exitCode}); its log is above (it listens on ${address})`,
    );
  }
  return { name, close };
}

function printSummary(
  config: LoupeConfig,
  model: ModelChoice,
  urls: {
    web: string | null;
    webNote: string;
    graphql: string;
    capture: { address: string };
    sae: { address: string };
    explainer: { address: string };
  },
): void {
  const modelLine = model.offline
    ? `${model.name} (OFFLINE: a small random-weight GPT-2 made on this machine; the real ${config.model} is pulled on a start with a network)`
    : model.fetch === 'pull'
      ? `${model.name} (downloading from ${config.hfEndpoint}; requests say so until it is there)`
      : model.name;
  process.stderr.write(
    [
      '',
      'Loupe is running (Ctrl-C to stop)',
      `  web        ${urls.web ?? urls.webNote}`,
      `  GraphQL    ${urls.graphql}`,
      `  gRPC       capture ${urls.capture.address} · sae ${urls.sae.address} · explainer ${urls.explainer.address}`,
      `  model      ${modelLine}`,
      `  demo       prepared in the background; progress in ${workspaceFile(config.dataDir)}`,
      '',
      '',
    ].join('\n'),
  );
}

/** The model (pull or offline fixture), then the demo workspace; failures are logged, never fatal. */
async function prepareWorkspace(
  config: LoupeConfig,
  model: ModelChoice,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const capture = captureServiceClient(config.captureAddress);
  const sae = saeServiceClient(config.saeAddress);
  const explainer = explainerServiceClient(config.explainerAddress);
  try {
    await runDemo({
      file: workspaceFile(config.dataDir),
      model: model.name,
      offline: model.offline,
      capture,
      sae,
      explainer,
      signal,
      log: createLogger('demo', config.logLevel),
      prepareModel: async () => {
        if (model.fetch === 'fixture') {
          log.info({ model: model.name }, 'making the offline model');
          await makeOfflineModel(config);
          process.stderr.write(`loupe: offline model ready: ${modelDir(config, model.name)}\n`);
        } else if (model.fetch === 'pull') {
          const { pull } = await import('./model.js');
          await pull(model.name, { revision: 'main' });
        }
        if (!(await hasModel(config, model.name)))
          throw new UserInputError(
            `no model at ${modelDir(config, model.name)}; get one with: npx loupe model pull gpt2`,
          );
      },
    });
  } catch (error) {
    log.warn({ err: (error as Error).message }, 'demo workspace not prepared');
  } finally {
    capture.close();
    sae.close();
    explainer.close();
  }
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const WEB_DIR = path.join(REPO_ROOT, 'web');

/**
 * `next start` in web/, in its own process group so that stopping it stops its workers too. The
 * environment passes through (the web app reads LOUPE_GATEWAY_PORT like the services); `env` adds
 * Next's telemetry opt-out. Without a build the API keeps running and the summary says what to do.
 */
async function startWeb(
  config: LoupeConfig,
  log: Logger,
): Promise<{ url: string | null; note: string; running?: Running }> {
  if (!fs.existsSync(path.join(WEB_DIR, '.next', 'BUILD_ID')))
    return {
      url: null,
      note: `not built: run npm run build, then start again (${WEB_DIR}/.next is missing)`,
    };
  const port = String(config.webPort);
  if (await listening(config.webPort))
    return { url: null, note: `not started: port ${port} is in use (set LOUPE_WEB_PORT)` };
  const next = createRequire(path.join(WEB_DIR, 'package.json')).resolve('next/dist/bin/next');
  const child: ChildProcess = spawn(
    'env',
    [
      'NEXT_TELEMETRY_DISABLED=1',
      `LOUPE_GATEWAY_PORT=${config.gatewayPort}`,
      process.execPath,
      next,
      'start',
      '-p',
      port,
    ],
    { cwd: WEB_DIR, stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // if this process ends without stopping it (an uncaught error, process.exit), the group goes too
  const killGroup = () => {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', killGroup);
  const close = async () => {
    process.removeListener('exit', killGroup);
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      killGroup();
      const killer = setTimeout(() => {
        try {
          if (child.pid) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }, 10_000);
      await exited;
      clearTimeout(killer);
    }
  };
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 240; i++) {
    if (await listening(config.webPort)) return { url, note: '', running: { name: 'web', close } };
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  await close();
  log.error({ output }, 'the web app did not start');
  return { url: null, note: `did not start (port ${port}): ${output.trim().split('\n').pop() ?? ''}` };
}

function listening(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * One `loupe serve` per data directory: a second one would find every port taken and the database's
 * folder locked, and fail somewhere in the middle. It says at once who holds the directory instead.
 */
async function lockServeDir(config: LoupeConfig): Promise<Running> {
  const { lockDataDir } = await import('@loupe/common/db');
  const lock = await lockDataDir(config.dataDir, 'data directory', 'loupe-serve.lock').catch(
    (error: Error) => {
      throw new UserInputError(
        `${error.message}: another loupe serve runs on it; stop that one, or set LOUPE_DATA_DIR and the ports to run a second`,
        'UNAVAILABLE',
      );
    },
  );
  return { name: 'data directory lock', close: () => lock.release() };
}

/**
 * Without DATABASE_URL the services share one embedded Postgres. Started here, once, so two services
 * opening their schemas at the same moment do not both try to start it; it stops with this process.
 */
async function startEmbeddedDatabase(config: LoupeConfig): Promise<Running[]> {
  if (config.databaseUrl) return [];
  // another `loupe serve` (or a database someone started) already serves it
  if (await listening(config.embeddedPgPort)) return [];
  const { spawnEmbeddedPostgres } = await import('@loupe/common/db');
  const db = await spawnEmbeddedPostgres({
    dataDir: path.join(config.dataDir, 'pg'),
    port: config.embeddedPgPort,
  });
  process.stderr.write(`loupe: embedded Postgres on ${db.url.replace(/\/\/[^@]*@/, '//')}\n`);
  return [{ name: 'postgres', close: () => db.stop() }];
}
