import type { Device, Logger } from '@loupe/common';
import { LoupeError } from '@loupe/common';
import ort from 'onnxruntime-node';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface SessionSettings {
  device: Device;
  /** 0 lets ONNX Runtime use one thread per physical core */
  intraOpThreads: number;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  provider: ExecutionProvider;
}

/**
 * Opens an ONNX Runtime session on the provider LOUPE_DEVICE asks for. `auto` tries CUDA and falls back
 * to CPU with a log line saying why; an explicit `cuda` that cannot load is an error, not a silent CPU run.
 */
export async function openSession(
  file: string,
  settings: SessionSettings,
  log?: Logger,
): Promise<OpenedSession> {
  // Severity 3 (errors only) hides ONNX Runtime's notice that the steering inputs are overridable
  // initializers, which is intended; the CUDA probe is silenced entirely and logged by us instead.
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
  if (settings.device !== 'cpu') {
    try {
      const session = await ort.InferenceSession.create(file, options('cuda'));
      log?.info({ file, provider: 'cuda' }, 'onnx runtime session on CUDA');
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
  const session = await ort.InferenceSession.create(file, options('cpu'));
  log?.info(
    { file, provider: 'cpu', threads: settings.intraOpThreads || 'default' },
    'onnx runtime session on CPU',
  );
  return { session, provider: 'cpu' };
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0];
}
