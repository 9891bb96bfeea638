import {
  readWorkspace,
  STEP_KINDS,
  type StepKind,
  type StepState,
  type StepStatus,
  WORKSPACE_FILE,
  type WorkspaceState,
  workspaceFile,
  writeWorkspace,
} from '@loupe/common';
import type {
  CaptureJob__Output,
  DocumentCollection__Output,
  ScoringJob__Output,
  TrainingJob__Output,
} from '@loupe/common/grpc';
import type { DemoPlan } from './plan.js';

export {
  readWorkspace,
  STEP_KINDS,
  type StepKind,
  type StepState,
  type StepStatus,
  WORKSPACE_FILE,
  type WorkspaceState,
  workspaceFile,
  writeWorkspace,
};

/**
 * The demo workspace's progress, kept in $LOUPE_DATA_DIR/workspace.json: which model it is for, whether
 * that is the offline fixture, and each step with the job that does it. A restart reads it back and
 * carries on from the first step that is not done, reusing the jobs it names.
 */

export function freshWorkspace(model: string, offline: boolean): WorkspaceState {
  return {
    version: 1,
    model,
    offline,
    status: 'running',
    steps: STEP_KINDS.map((kind) => ({ kind, jobId: null, status: 'pending', progress: 0, error: null })),
    saeId: null,
    updatedAt: new Date().toISOString(),
  };
}

/**
 * The workspace to carry on with: the saved one when it is for this model, else a fresh one (a start
 * that pulled the real GPT-2 after an offline start prepares a workspace for it). Steps that had
 * failed are tried again.
 */
export function resumeWorkspace(
  saved: WorkspaceState | null,
  model: string,
  offline: boolean,
): WorkspaceState {
  if (saved?.version !== 1 || saved.model !== model) return freshWorkspace(model, offline);
  const steps = STEP_KINDS.map((kind) => {
    const step = saved.steps.find((s) => s.kind === kind);
    if (!step) return { kind, jobId: null, status: 'pending' as const, progress: 0, error: null };
    return step.status === 'failed' ? { ...step, status: 'pending' as const, error: null } : step;
  });
  const done = steps.every((s) => s.status === 'done');
  return { ...saved, offline, steps, status: done ? 'done' : 'running' };
}

export function step(state: WorkspaceState, kind: StepKind): StepState {
  const found = state.steps.find((s) => s.kind === kind);
  if (!found) throw new Error(`workspace has no ${kind} step`);
  return found;
}

export function withStep(state: WorkspaceState, kind: StepKind, change: Partial<StepState>): WorkspaceState {
  const steps = state.steps.map((s) => (s.kind === kind ? { ...s, ...change } : s));
  const failed = steps.some((s) => s.status === 'failed');
  const done = steps.every((s) => s.status === 'done');
  return { ...state, steps, status: failed ? 'failed' : done ? 'done' : 'running' };
}

const FAILED = new Set(['failed', 'cancelled', 'budget_exhausted']);

function fraction(done: number, total: number): number {
  return total > 0 ? Math.min(1, Math.max(0, done / total)) : 0;
}

function jobError(job: { status: string; error: string }): string {
  return job.error || `the job ended ${job.status}`;
}

/** The capture step as its job stands. */
export function captureStep(job: CaptureJob__Output): Partial<StepState> {
  if (job.status === 'done') return { jobId: job.id, status: 'done', progress: 1, error: null };
  if (FAILED.has(job.status)) return { jobId: job.id, status: 'failed', error: jobError(job) };
  // the records phase follows the last window: most of the work is behind it
  return {
    jobId: job.id,
    status: 'running',
    progress: fraction(job.windowsDone, job.totalWindows),
    error: null,
  };
}

/**
 * The train and records steps as their one training job stands: training (and its evaluation) is the
 * train step; the job's features phase computes the feature records.
 */
export function trainingSteps(job: TrainingJob__Output): {
  train: Partial<StepState>;
  records: Partial<StepState>;
} {
  const id = job.id;
  if (job.status === 'done')
    return {
      train: { jobId: id, status: 'done', progress: 1, error: null },
      records: { jobId: id, status: 'done', progress: 1, error: null },
    };
  const failed = FAILED.has(job.status);
  if (job.phase === 'features')
    return {
      train: { jobId: id, status: 'done', progress: 1, error: null },
      records: failed
        ? { jobId: id, status: 'failed', error: jobError(job) }
        : { jobId: id, status: 'running', progress: 0, error: null },
    };
  return {
    train: failed
      ? { jobId: id, status: 'failed', error: jobError(job) }
      : { jobId: id, status: 'running', progress: fraction(job.step, job.steps), error: null },
    records: { jobId: id, status: 'pending', progress: 0, error: null },
  };
}

/** The scores step as its scoring job stands (units that failed still count as handled). */
export function scoresStep(job: ScoringJob__Output): Partial<StepState> {
  if (job.status === 'done') return { jobId: job.id, status: 'done', progress: 1, error: null };
  if (FAILED.has(job.status)) return { jobId: job.id, status: 'failed', error: jobError(job) };
  return {
    jobId: job.id,
    status: 'running',
    progress: fraction(job.unitsDone + job.unitsFailed, job.unitsTotal),
    error: null,
  };
}

/**
 * Whether a collection already holds the plan's shop catalog, as far as a collection tells: the model,
 * the hook, mean pooling and at least the catalog's products (a larger catalog of the same seed extends
 * it product by product; the seed itself is not recorded, so it is taken on trust).
 */
export function shopIndexed(collection: DocumentCollection__Output | null, plan: DemoPlan): boolean {
  if (!collection) return false;
  return (
    collection.model === plan.model &&
    collection.hook === plan.shop.hook &&
    collection.pooling === 'mean' &&
    Number(collection.count) >= plan.shop.products
  );
}
