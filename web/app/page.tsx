import Link from 'next/link';
import { ErrorBox } from '@/components/error-box';
import { WorkspaceBanner } from '@/components/workspace-banner';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import type { HomeModelsQuery } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';

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

export default async function Home() {
  let data: HomeModelsQuery | undefined;
  try {
    data = (await query({ query: MODELS })).data;
  } catch (error) {
    return <ErrorBox {...describeError(error)} />;
  }
  return (
    <>
      {data?.workspace ? <WorkspaceBanner workspace={data.workspace} /> : null}
      <h1>Models</h1>
      {data?.models.edges.map(({ node: model }) => (
        <section key={model.name} className="model">
          <h2>{model.name}</h2>
          <p className="muted">
            {model.nLayer} layers · d_model {model.dModel} · d_mlp {model.dMlp} · running on{' '}
            {model.executionProvider} ·{' '}
            <Link href={`/models/${encodeURIComponent(model.name)}`}>browse SAEs and hooks</Link>
          </p>
          <form action="/units/lookup" method="get" className="lookup">
            <input type="hidden" name="model" value={model.name} />
            <label>
              hook{' '}
              <select name="hook">
                {Array.from({ length: model.nLayer }, (_, layer) => `blocks.${layer}.mlp.hook_post`).map(
                  (hook) => (
                    <option key={hook} value={hook}>
                      {hook} ({model.dMlp})
                    </option>
                  ),
                )}
              </select>
            </label>{' '}
            <label>
              neuron <input name="index" type="number" min={0} defaultValue={0} required />
            </label>{' '}
            <button type="submit">Open</button>
          </form>
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
