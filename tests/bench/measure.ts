export interface Row {
  measure: string;
  value: string;
  reference: string;
  ratio: string;
}

export function printTable(
  title: string,
  rows: Row[],
  header: Row = { measure: 'measure', value: 'value', reference: 'reference', ratio: 'ratio' },
): void {
  const keys = Object.keys(header) as (keyof Row)[];
  const all = [header, ...rows];
  const widths = keys.map((k) => Math.max(...all.map((r) => r[k].length)));
  const line = (r: Row) => `| ${keys.map((k, i) => r[k].padEnd(widths[i])).join(' | ')} |`;
  console.log(`\n## ${title}\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const pct = (x: number) => `${fmt(100 * x)}%`;
