import { setTimeout as sleep } from 'node:timers/promises';

/** Job statuses after which nothing changes (budget_exhausted: a scoring job that spent its budget). */
const FINISHED = new Set(['done', 'failed', 'cancelled', 'budget_exhausted']);

export function finished(job: { status: string }): boolean {
  return FINISHED.has(job.status);
}

/**
 * Live progress of a job as a subscription's event stream: asks the service for the job every
 * `intervalMs`, yields the job each time it changed, and ends after yielding it finished. The first
 * state is fetched before the stream is returned, so an unknown job fails the subscription itself.
 * A later failure (the service went away) is yielded as the field's error, then the stream ends.
 */
export async function progress<J extends { status: string }>(
  field: string,
  get: () => Promise<J>,
  intervalMs: number,
): Promise<AsyncGenerator<Record<string, J | Error>>> {
  const first = await get();
  async function* stream(): AsyncGenerator<Record<string, J | Error>> {
    let job = first;
    let last = JSON.stringify(job);
    yield { [field]: job };
    while (!finished(job)) {
      await sleep(intervalMs);
      try {
        job = await get();
      } catch (error) {
        yield { [field]: error as Error };
        return;
      }
      const now = JSON.stringify(job);
      if (now !== last) yield { [field]: job };
      last = now;
    }
  }
  return stream();
}
