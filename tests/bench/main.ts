import os from 'node:os';
import { captureBench } from './capture.js';
import { eventLoopBench } from './event-loop.js';
import { explainerBench } from './explainer.js';
import { gatewayBench } from './gateway.js';
import { generateBench } from './generate.js';
import { MatmulProbe } from './matmul-rate.js';
import { publishedBench } from './published.js';
import { researchBench } from './research.js';
import { saeBench } from './sae.js';
import { saeEncodeBench } from './sae-encode.js';
import { vectorSearchBench } from './vector-search.js';

// `npm run bench`: hot paths with the reference each is compared against. Not a test: figures only.
console.log(
  `# Loupe benchmarks\n\n${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), node ${process.version}`,
);
const probe = await MatmulProbe.create();
const only = process.argv[2];
if (!only || only === 'capture') await captureBench(probe);
if (!only || only === 'research') await researchBench(probe);
if (!only || only === 'generate') await generateBench();
if (!only || only === 'event-loop') await eventLoopBench();
if (!only || only === 'sae') await saeBench(probe);
if (!only || only === 'sae-encode') await saeEncodeBench();
if (!only || only === 'search') await vectorSearchBench();
if (!only || only === 'explainer') await explainerBench();
if (!only || only === 'gateway') await gatewayBench();
if (!only || only === 'published') await publishedBench();
await probe.release();
