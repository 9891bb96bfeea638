import cliProgress from 'cli-progress';

/**
 * A progress bar on stderr (stdout stays clean for JSON). When stderr is not a terminal it prints a
 * line every 10% instead, so logs of long CI or batch runs still show movement.
 */
export interface Progress {
  update(done: number, total: number, label?: string): void;
  stop(): void;
}

export function progressBar(title: string): Progress {
  if (!process.stderr.isTTY) {
    let lastDecile = -1;
    return {
      update(done, total, label) {
        const decile = total > 0 ? Math.floor((10 * done) / total) : 0;
        if (decile !== lastDecile) {
          lastDecile = decile;
          process.stderr.write(`${title}${label ? ` ${label}` : ''}: ${decile * 10}%\n`);
        }
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: `${title} {label} [{bar}] {percentage}% {value}/{total}`,
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, label = '') {
      if (!started) {
        bar.start(total, done, { label });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { label });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
