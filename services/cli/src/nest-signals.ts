/**
 * Every signal NestJS's enableShutdownHooks() listens to (it would re-raise them after its close): a
 * process that runs Nest apps under its own shutdown removes Nest's listeners for these.
 */
export const NEST_SHUTDOWN_SIGNALS = [
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGILL',
  'SIGTRAP',
  'SIGABRT',
  'SIGBUS',
  'SIGFPE',
  'SIGSEGV',
  'SIGUSR2',
  'SIGTERM',
] as const;
