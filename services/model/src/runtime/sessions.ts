import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Device, Logger } from '@loupe/common';
import { LoupeError } from '@loupe/common';
import { recordExecutionProvider } from '@loupe/common/metrics';
import type ort from 'onnxruntime-node';
import { type RuntimeSession, ThreadedSession } from './session-thread.js';

/**
 * Whether onnxruntime-node was installed with its CUDA provider (ONNXRUNTIME_NODE_INSTALL_CUDA at
 * install time). Checked before trying, because a failed CUDA load prints native errors on stderr.
 */
function cudaProviderInstalled(): boolean {
  const require = createRequire(import.meta.url);
  const root = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const bin = path.join(root, 'bin', 'napi-v6', process.platform, process.arch);
  return existsSync(path.join(bin, 'libonnxruntime_providers_cuda.so'));
}

export type ExecutionProvider = 'cpu' | 'cuda';

export interface SessionSettings {
  device: Device;
  /** 0 lets ONNX Runtime use one thread per physical core */
  intraOpThreads: number;
  /** the service that owns the session, as its metrics name it (default `cli`: an in-process command) */
  owner?: string;
}

export interface OpenedSession {
  /** on its own worker thread, so its runs never block this thread's event loop */
  session: RuntimeSession;
  provider: ExecutionProvider;
}

/**
 * Opens an ONNX Runtime session on the provider LOUPE_DEVICE asks for. `auto` tries CUDA and falls back
 * to CPU with a log line saying why; an explicit `cuda` that cannot load is an error, not a silent CPU run.
 */
export async function openSession(
  model: string | Uint8Array,
  settings: SessionSettings,
  log?: Logger,
): Promise<OpenedSession> {
  const file = typeof model === 'string' ? model : '(in-memory graph)';
  // Errors only (severity 3): ONNX Runtime's warnings are about choices made on purpose here; the CUDA
  // probe is silenced entirely and its outcome logged by us instead.
  const options = (provider: ExecutionProvider): ort.InferenceSession.SessionOptions => ({
    executionProviders: [provider],
    logSeverityLevel: provider === 'cuda' && settings.device === 'auto' ? 4 : 3,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: settings.intraOpThreads,
    interOpNumThreads: 1,
    enableCpuMemArena: true,
    enableMemPattern: true,
  });
  if (settings.device === 'auto' && !cudaProviderInstalled()) {
    log?.info({ file, provider: 'cpu', reason: 'the CUDA provider is not installed' }, 'using CPU');
  } else if (settings.device !== 'cpu') {
    try {
      const session = await create(model, options('cuda'));
      log?.info({ file, provider: 'cuda' }, 'onnx runtime session on CUDA');
      recordExecutionProvider(settings.owner ?? 'cli', 'cuda');
      return { session, provider: 'cuda' };
    } catch (error) {
      if (settings.device === 'cuda') {
        throw new LoupeError(
          `LOUPE_DEVICE=cuda but the CUDA execution provider did not load: ${(error as Error).message}`,
          'UNAVAILABLE',
        );
      }
      log?.info({ file, provider: 'cpu', reason: firstLine(error) }, 'CUDA provider unavailable, using CPU');
    }
  }
  const session = await create(model, options('cpu'));
  log?.info(
    { file, provider: 'cpu', threads: settings.intraOpThreads || 'default' },
    'onnx runtime session on CPU',
  );
  recordExecutionProvider(settings.owner ?? 'cli', 'cpu');
  return { session, provider: 'cpu' };
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0];
}

function create(
  model: string | Uint8Array,
  options: ort.InferenceSession.SessionOptions,
): Promise<RuntimeSession> {
  return ThreadedSession.open(model, options);
}
