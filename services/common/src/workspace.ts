import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * The demo workspace that `loupe serve` prepares on a first run, as kept in $LOUPE_DATA_DIR/workspace.json:
 * which model it is for, whether that is the offline fixture, and each step with the job doing it. The
 * CLI writes it; the gateway reads it to show progress on the home page.
 */

export const STEP_KINDS = ['model', 'capture', 'train', 'records', 'scores', 'shop'] as const;
export type StepKind = (typeof STEP_KINDS)[number];
export type StepStatus = 'pending' | 'running' | 'done' | 'failed';

export interface StepState {
  kind: StepKind;
  /**
   * the capture, training or scoring job doing this step; train and records share the training job; the
   * shop step (indexing the product catalog) is one call with no job
   */
  jobId: string | null;
  status: StepStatus;
  /** 0–1 */
  progress: number;
  error: string | null;
}

export interface WorkspaceState {
  version: 1;
  model: string;
  /** the model is the seeded fixture made because the hub could not be reached */
  offline: boolean;
  status: 'running' | 'done' | 'failed';
  steps: StepState[];
  /** the SAE trained for the demo, once its training job is done */
  saeId: string | null;
  updatedAt: string;
}

export const WORKSPACE_FILE = 'workspace.json';

export function workspaceFile(dataDir: string): string {
  return path.join(dataDir, WORKSPACE_FILE);
}

export async function readWorkspace(file: string): Promise<WorkspaceState | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as WorkspaceState;
  } catch {
    return null; // missing, or unreadable: start over (the jobs themselves are idempotent)
  }
}

/** Written aside and renamed, so a reader (the gateway) or a crash never sees half a file. */
export async function writeWorkspace(file: string, state: WorkspaceState): Promise<void> {
  const staging = `${file}.tmp-${process.pid}`;
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(
    staging,
    `${JSON.stringify({ ...state, updatedAt: new Date().toISOString() }, null, 2)}\n`,
  );
  await fs.rename(staging, file);
}
