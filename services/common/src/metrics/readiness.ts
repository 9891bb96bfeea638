/**
 * What each service of this process needs before it can serve (its database reachable, for capture
 * its model loaded). The gRPC health service and the HTTP /readyz both ask here; `loupe serve` runs
 * several services in one process, so checks are kept per service name.
 */
export type ReadinessChecks = Record<string, () => Promise<unknown>>;

export interface Readiness {
  ready: boolean;
  /** per service, why it is not ready (only services that are not) */
  reasons: Record<string, string>;
}

const services = new Map<string, ReadinessChecks>();

/** A check that takes longer than this counts as failed for this probe (it keeps running). */
const CHECK_TIMEOUT_MS = 5_000;

export function registerReadiness(service: string, checks: ReadinessChecks): () => void {
  services.set(service, checks);
  return () => {
    if (services.get(service) === checks) services.delete(service);
  };
}

export function knownServices(): string[] {
  return [...services.keys()];
}

/** Runs the checks of `service`, or of every registered service when none is named. */
export async function checkReadiness(service?: string): Promise<Readiness> {
  const names = service === undefined ? knownServices() : [service];
  const reasons: Record<string, string> = {};
  await Promise.all(
    names.map(async (name) => {
      const reason = await failedCheck(services.get(name));
      if (reason) reasons[name] = reason;
    }),
  );
  return { ready: Object.keys(reasons).length === 0, reasons };
}

async function failedCheck(checks: ReadinessChecks | undefined): Promise<string | null> {
  if (!checks) return 'not running in this process';
  const failures = await Promise.all(
    Object.entries(checks).map(async ([what, check]) => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([check(), timeout]);
        return null;
      } catch (error) {
        return `${what}: ${(error as Error).message ?? String(error)}`;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const failed = failures.filter((f): f is string => f !== null);
  return failed.length ? failed.join('; ') : null;
}
