import { ErrorBox } from '@/components/error-box';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import type { PatchingPageQuery, PatchSweepHook } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';

export const dynamic = 'force-dynamic';

const PATCHING = graphql(`
  query PatchingPage(
    $clean: String!
    $corrupted: String!
    $answer: String!
    $wrong: String!
    $hook: PatchSweepHook!
  ) {
    activationPatching(clean: $clean, corrupted: $corrupted, answer: $answer, wrong: $wrong, hook: $hook) {
      hook
      tokens {
        id
        text
      }
      cleanDiff
      corruptedDiff
      scores
    }
  }
`);

const HOOKS: PatchSweepHook[] = ['resid_pre', 'attn_out', 'mlp_out', 'z'];

/** Blue where a patch restores the clean answer (1), red where it pushes the other way (−1). */
function shade(score: number | null | undefined): string {
  if (score === null || score === undefined) return 'transparent';
  const s = Math.max(-1, Math.min(1, score));
  return s >= 0 ? `rgba(0, 90, 220, ${s})` : `rgba(220, 40, 0, ${-s})`;
}

/**
 * Activation patching as a heat map (layer × position, or layer × head for z), set up from the URL;
 * each cell links to the patched run's activations.
 */
export default async function PatchingPage(props: {
  searchParams: Promise<{
    clean?: string;
    corrupted?: string;
    answer?: string;
    wrong?: string;
    hook?: string;
  }>;
}) {
  const params = await props.searchParams;
  const hook = HOOKS.find((h) => h === params.hook) ?? 'resid_pre';
  let result: PatchingPageQuery['activationPatching'] | undefined;
  let failure: { code: string; message: string } | undefined;
  const { clean, corrupted, answer, wrong } = params;
  if (clean && corrupted && answer && wrong) {
    try {
      result = (await query({ query: PATCHING, variables: { clean, corrupted, answer, wrong, hook } })).data
        ?.activationPatching;
    } catch (error) {
      failure = describeError(error);
    }
  }
  const columns = result ? (hook === 'z' ? (result.scores[0]?.length ?? 0) : result.tokens.length) : 0;
  return (
    <>
      <h1>Activation patching</h1>
      <p className="muted">
        Each cell patches one slice of the clean run into the corrupted run and shows how much of the clean
        logit difference (answer − wrong, last position) it restores: 1 fully, 0 not at all.
      </p>
      <form method="get" action="/patching" className="search-form">
        <input name="clean" defaultValue={clean ?? ''} placeholder="clean prompt" required />
        <input
          name="corrupted"
          defaultValue={corrupted ?? ''}
          placeholder="corrupted prompt (same length)"
          required
        />
        <input name="answer" defaultValue={answer ?? ''} placeholder="answer token, e.g. ' Mary'" required />
        <input name="wrong" defaultValue={wrong ?? ''} placeholder="wrong token, e.g. ' John'" required />
        <select name="hook" defaultValue={hook}>
          {HOOKS.map((h) => (
            <option key={h} value={h}>
              {h}
            </option>
          ))}
        </select>
        <button type="submit">Sweep</button>
      </form>
      {failure ? <ErrorBox {...failure} /> : null}
      {result ? (
        <>
          <p className="muted" data-clean={result.cleanDiff} data-corrupted={result.corruptedDiff}>
            clean logit difference {result.cleanDiff.toFixed(3)}, corrupted {result.corruptedDiff.toFixed(3)}
          </p>
          <table className="patching-map">
            <thead>
              <tr>
                <th>layer</th>
                {Array.from({ length: columns }, (_, c) => (
                  // biome-ignore lint/suspicious/noArrayIndexKey: column is the key
                  <th key={c}>{hook === 'z' ? `head ${c}` : result.tokens[c].text}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {result.scores.map((row, layer) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: layer is the key
                <tr key={layer}>
                  <th>{layer}</th>
                  {row.map((score, c) => (
                    <td
                      // biome-ignore lint/suspicious/noArrayIndexKey: column is the key
                      key={c}
                      data-score={score ?? ''}
                      data-patch={cellPatch(hook, layer, c)}
                      title={`loupe activations --patch '[${cellPatch(hook, layer, c)}]'`}
                      style={{ backgroundColor: shade(score) }}
                    >
                      {score?.toFixed(2) ?? '–'}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
    </>
  );
}

/**
 * The patch a cell stands for, as `loupe activations --patch` and GraphQL's `activations(patches:)` take
 * it (mode replace with the clean run's values at that slice): shown on hover, to rerun the patched run.
 */
function cellPatch(hook: PatchSweepHook, layer: number, column: number): string {
  const name =
    hook === 'z'
      ? `blocks.${layer}.attn.hook_z`
      : `blocks.${layer}.${hook === 'resid_pre' ? 'hook_resid_pre' : `hook_${hook}`}`;
  const where = hook === 'z' ? { head: column } : { positions: [column] };
  return JSON.stringify({ hook: name, mode: 'replace', ...where });
}
