import type { Sql } from '@loupe/common/db';
import type { RecordRowsSource, Window } from '@loupe/records';
import type { CaptureJobRow } from './job-store.js';

/**
 * A hook's record rows: the windows its records point at, and one neuron_records row per neuron. The
 * neurons go in as one statement with one array parameter per column (unnest): thousands of rows of
 * separate parameters cost far more to serialize and bind than the rows themselves.
 */
export async function saveRecordRows(
  sql: Sql,
  job: CaptureJobRow,
  hook: string,
  set: RecordRowsSource,
  windows: Window[],
  file: string,
): Promise<void> {
  const referenced = new Set<number>(
    [...set.topWindows, ...set.randomWindows, ...set.quantileWindows].filter((w) => w >= 0),
  );
  const windowRows = [...referenced]
    .sort((a, b) => a - b)
    .map((index) => ({
      job_id: job.id,
      window_index: index,
      document_id: windows[index].documentId,
      start_token: windows[index].start,
      token_ids: windows[index].ids,
    }));
  const BATCH = 500;
  for (let i = 0; i < windowRows.length; i += BATCH) {
    await sql`INSERT INTO record_windows ${sql(windowRows.slice(i, i + BATCH))} ON CONFLICT (job_id, window_index) DO NOTHING`;
  }
  const k = set.settings.topK;
  const bins = set.settings.histogramBins;
  // array columns travel as one array literal per row: slicing one long array in SQL re-reads it per row
  const literal = (values: ArrayLike<number>) => `{${Array.from(values).join(',')}}`;
  const histograms: string[] = [];
  const topWindows: string[] = [];
  const topMax: string[] = [];
  for (let j = 0; j < set.width; j++) {
    histograms.push(literal(set.histogram.subarray(j * bins, (j + 1) * bins)));
    // top lists fill from the front: a neuron's windows are its slots up to the first empty one (-1)
    let count = 0;
    while (count < k && set.topWindows[j * k + count] >= 0) count++;
    topWindows.push(literal(set.topWindows.subarray(j * k, j * k + count)));
    topMax.push(literal(set.topMax.subarray(j * k, j * k + count)));
  }
  await sql`
    INSERT INTO neuron_records (job_id, model, hook, neuron, max_activation, min_activation, mean_activation,
                                fraction_nonzero, tokens, histogram, top_windows, top_max, records_file)
    SELECT ${job.id}, ${job.model}, ${hook}, u.neuron - 1, u.max, u.min, u.mean, u.nonzero, ${set.tokens},
           u.histogram::int4[], u.top_windows::int4[], u.top_max::float4[], ${file}
    FROM unnest(${Array.from(set.max)}::float8[], ${Array.from(set.min)}::float8[], ${Array.from(set.mean)}::float8[],
                ${Array.from(set.fractionNonZero)}::float8[], ${histograms}::text[], ${topWindows}::text[],
                ${topMax}::text[])
         WITH ORDINALITY AS u(max, min, mean, nonzero, histogram, top_windows, top_max, neuron)
    ON CONFLICT (job_id, hook, neuron) DO UPDATE SET
      max_activation = EXCLUDED.max_activation, min_activation = EXCLUDED.min_activation,
      mean_activation = EXCLUDED.mean_activation, fraction_nonzero = EXCLUDED.fraction_nonzero, tokens = EXCLUDED.tokens,
      histogram = EXCLUDED.histogram, top_windows = EXCLUDED.top_windows, top_max = EXCLUDED.top_max,
      records_file = EXCLUDED.records_file`;
}
