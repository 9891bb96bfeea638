import Link from 'next/link';
import { ErrorBox } from '@/components/error-box';
import { WorkspaceBanner } from '@/components/workspace-banner';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import type { HomeModelsQuery } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';
import { captureCommand, type RecordedHook, recordedHooks } from '@/lib/recorded-hooks';

export const dynamic = 'force-dynamic';

const MODELS = graphql(`
  query HomeModels {
    workspace {
      ...WorkspaceBanner
    }
    models {
      edges {
        node {
          name
          nLayer
          dModel
          dMlp
          executionProvider
          hooks(first: 100) {
            edges {
              node {
                name
                width
              }
            }
          }
        }
      }
    }
  }
`);

// how many neurons of a model were imported from a published dataset: the home page links them when any
const IMPORTED = graphql(`
  query HomeImported($model: String!) {
    publishedNeurons(model: $model, first: 0) {
      totalCount
    }
  }
`);

/** Imported neurons of a model; 0 when the explainer cannot say (the page still lists the models). */
async function importedNeurons(model: string): Promise<number> {
  try {
    return (await query({ query: IMPORTED, variables: { model } })).data?.publishedNeurons.totalCount ?? 0;
  } catch {
    return 0;
  }
}

type HomeModel = HomeModelsQuery['models']['edges'][number]['node'];

export default async function Home() {
  let data: HomeModelsQuery | undefined;
  let recorded: RecordedHook[][] = [];
  let imported: number[] = [];
  try {
    data = (await query({ query: MODELS })).data;
    const models = data?.models.edges ?? [];
    [recorded, imported] = await Promise.all([
      Promise.all(
        models.map(({ node }) =>
          recordedHooks(
            node.name,
            node.hooks.edges.map((e) => e.node),
          ),
        ),
      ),
      Promise.all(models.map(({ node }) => importedNeurons(node.name))),
    ]);
  } catch (error) {
    return <ErrorBox {...describeError(error)} />;
  }
  return (
    <>
      {data?.workspace ? <WorkspaceBanner workspace={data.workspace} /> : null}
      <h1>Models</h1>
      {data?.models.edges.map(({ node: model }, i) => (
        <section key={model.name} className="model">
          <h2>{model.name}</h2>
          <p className="muted">
            {model.nLayer} layers · d_model {model.dModel} · d_mlp {model.dMlp} · running on{' '}
            {model.executionProvider} ·{' '}
            <Link href={`/models/${encodeURIComponent(model.name)}`}>browse SAEs and hooks</Link>
            {imported[i] ? (
              <>
                {' · '}
                <Link href={`/published?model=${encodeURIComponent(model.name)}`} className="published-link">
                  {imported[i].toLocaleString('en')} published neurons
                </Link>
              </>
            ) : null}
          </p>
          <NeuronPicker model={model} recorded={recorded[i] ?? []} />
          <details>
            <summary>All hooks</summary>
            <table>
              <tbody>
                {model.hooks.edges.map(({ node }) => (
                  <tr key={node.name}>
                    <td>
                      <code>{node.name}</code>
                    </td>
                    <td>{node.width}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </section>
      ))}
    </>
  );
}

/**
 * Open a neuron: only hooks with records are offered (a capture job recorded them), starting at the
 * first one's strongest neuron; the rest are named with the command that captures them.
 */
function NeuronPicker(props: { model: HomeModel; recorded: RecordedHook[] }) {
  const { model, recorded } = props;
  const have = new Set(recorded.map((h) => h.name));
  const missing = model.hooks.edges
    .map((e) => e.node.name)
    .filter((name) => /^blocks\.\d+\.mlp\.hook_post$/.test(name) && !have.has(name));
  const first = recorded[0];
  return (
    <>
      {first ? (
        <form action="/units/lookup" method="get" className="lookup">
          <input type="hidden" name="model" value={model.name} />
          <label>
            hook{' '}
            <select name="hook" defaultValue={first.name}>
              {recorded.map((hook) => (
                <option key={hook.name} value={hook.name} data-neurons={hook.neurons}>
                  {hook.name} ({hook.neurons} neurons with records)
                </option>
              ))}
            </select>
          </label>{' '}
          <label>
            neuron{' '}
            <input
              name="index"
              type="number"
              min={0}
              max={first.width - 1}
              defaultValue={first.strongest ?? 0}
              required
            />
          </label>{' '}
          <button type="submit">Open</button>{' '}
          <Link href={`/hooks/${encodeURIComponent(model.name)}/${first.name}`} className="hook-link">
            browse its neurons
          </Link>
        </form>
      ) : (
        <p className="muted no-records">No neuron has records yet.</p>
      )}
      {missing.length > 0 ? (
        <p className="muted capture-hint">
          {first
            ? missing.length === 1
              ? '1 other neuron hook has no records yet. '
              : `${missing.length} other neuron hooks have no records yet. `
            : null}
          Capture records with <code>{captureCommand(model.name, [missing[0]])}</code> (comma-separate several
          hooks), or start a capture job on the <Link href="/jobs">Jobs page</Link>.
        </p>
      ) : null}
    </>
  );
}
