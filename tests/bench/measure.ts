/** Runs `fn` `warmup` times unmeasured, then `runs` times; returns the median seconds per run. */
export async function medianSeconds(fn: () => Promise<unknown>, runs: number, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export interface Row {
  measure: string;
  value: string;
  reference: string;
  ratio: string;
}

export function printTable(title: string, rows: Row[]): void {
  const header: Row = { measure: 'measure', value: 'value', reference: 'reference', ratio: 'ratio' };
  const all = [header, ...rows];
  const widths = (Object.keys(header) as (keyof Row)[]).map((k) => Math.max(...all.map((r) => r[k].length)));
  const line = (r: Row) =>
    `| ${(Object.keys(header) as (keyof Row)[]).map((k, i) => r[k].padEnd(widths[i])).join(' | ')} |`;
  console.log(`\n## ${title}\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
