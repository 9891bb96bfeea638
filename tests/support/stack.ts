import { openDatabase, type Sql } from '@loupe/common/db';
import { SAE_MIGRATIONS_DIR, SAE_SCHEMA } from '@loupe/sae';
import { freePort, type RunningProcess, runCli, startProcess } from './process.js';
import { serveTiny } from './served-tiny.js';

// biome-ignore lint/suspicious/noExplicitAny: GraphQL answers are checked field by field
export type Json = any;

/** The tiny model served by capture, SAE, explainer and gateway processes over the suite's database. */
export interface Stack {
  env: Record<string, string>;
  scratch: string;
  servedModel: string;
  /** Bearer header of an API key made with `loupe apikey create` */
  auth: Record<string, string>;
  /** the whole GraphQL answer (data and errors) */
  post(
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
    url?: string,
  ): Promise<Json>;
  /** data, or a throw with the errors */
  gql(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<Json>;
  /** another gateway on the same services, with extra environment; returns its URL */
  startGateway(extraEnv: Record<string, string>): Promise<string>;
  stop(): Promise<void>;
}

/** `setup` runs before the services start, with the SAE schema migrated (e.g. to import SAEs). */
export async function startStack(
  setup: (ctx: { sql: Sql; dataDir: string; scratch: string }) => Promise<void> = async () => {},
): Promise<Stack> {
  const { scratch, dataDir, servedModel, db: database, dbEnv } = await serveTiny('loupe-stack-');
  const env: Record<string, string> = {
    LOUPE_DATA_DIR: dataDir,
    LOUPE_MODEL: 'tiny',
    LOUPE_CAPTURE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_SAE_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_EXPLAINER_ADDR: `127.0.0.1:${await freePort()}`,
    LOUPE_GATEWAY_PORT: String(await freePort()),
    LOUPE_DEVICE: 'cpu',
    LOUPE_THREADS: '1',
    ...dbEnv,
    LOUPE_LLM_BASE_URL: '',
    LOUPE_EMBEDDINGS_BASE_URL: '',
  };
  const processes: RunningProcess[] = [];
  const db = await openDatabase(
    { databaseUrl: database.url, dataDir, embeddedPgPort: 0 },
    { schema: SAE_SCHEMA, migrationsDir: SAE_MIGRATIONS_DIR, applicationName: 'stack-test' },
  );
  const stop = async () => {
    for (const p of processes.reverse()) await p.stop();
    await db.close();
    await database.stop();
  };
  const post = async (query: string, variables = {}, headers = {}, url = gatewayUrl(env)): Promise<Json> => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return response.json();
  };
  const startGateway = async (extraEnv: Record<string, string>) => {
    const gatewayEnv = { ...env, ...extraEnv };
    const gateway = startProcess('services/gateway/dist/bin.js', gatewayEnv);
    processes.push(gateway);
    const url = gatewayUrl(gatewayEnv);
    for (let i = 0; ; i++) {
      const up = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }).then(
        () => true,
        () => false,
      );
      if (up) return url;
      if (i > 240 || gateway.child.exitCode !== null)
        throw new Error(`gateway did not start:\n${gateway.stderr()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  try {
    await setup({ sql: db.sql, dataDir, scratch });
    const created = await runCli(['apikey', 'create', '--name', 'stack-test'], env);
    if (created.code !== 0) throw new Error(`loupe apikey create failed:\n${created.stderr}`);
    const auth = { authorization: `Bearer ${JSON.parse(created.stdout).key}` };
    for (const service of ['capture', 'sae', 'explainer'])
      processes.push(startProcess(`services/${service}/dist/main.js`, env));
    await startGateway({});
    const gql = async (query: string, variables = {}, headers = {}) => {
      const body = await post(query, variables, headers);
      if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
      return body.data;
    };
    return { env, scratch, servedModel, auth, post, gql, startGateway, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function gatewayUrl(env: Record<string, string>): string {
  return `http://127.0.0.1:${env.LOUPE_GATEWAY_PORT}/graphql`;
}
