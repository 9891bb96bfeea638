// One service of `loupe serve` in its own process: `node serve-child.js capture|sae|explainer|gateway`.
// serve.ts starts one per service so that they use the machine's cores (one Node event loop each),
// the way every other deployment runs them. This process stops cleanly on SIGTERM or SIGINT, and
// also when loupe serve goes away without stopping it (the IPC channel to it disconnects).

import { NEST_SHUTDOWN_SIGNALS } from '../nest-signals.js';

type Start = () => Promise<{ close(): Promise<void> }>;

const STARTS: Record<string, () => Promise<Start>> = {
  capture: async () => (await import('@loupe/capture/service')).startCaptureService,
  sae: async () => (await import('@loupe/sae/service')).startSaeService,
  explainer: async () => (await import('@loupe/explainer/service')).startExplainerService,
  gateway: async () => {
    // as the gateway's own bin.ts does, before graphql-js loads
    (await import('@loupe/common')).preferProductionMode();
    return (await import('@loupe/gateway/service')).startGateway;
  },
};

const name = process.argv[2] ?? '';
const load = STARTS[name];
if (!load) {
  process.stderr.write(`serve-child: unknown service "${name}"; one of ${Object.keys(STARTS).join(', ')}\n`);
  process.exit(2);
}
const running = await (await load())();
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await running
    .close()
    .catch((error: Error) => process.stderr.write(`loupe ${name}: stop failed: ${error.message}\n`));
  process.exit(0);
};
for (const signal of NEST_SHUTDOWN_SIGNALS) process.removeAllListeners(signal);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop());
process.on('disconnect', () => void stop());
// tells loupe serve that this service listens
process.send?.('ready');
