import Link from 'next/link';
import { ErrorBox } from '@/components/error-box';
import { MetricsCells, MetricsHeader } from '@/components/sae-metrics';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import type { BrowseModelQuery } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';

export const dynamic = 'force-dynamic';

const MODEL = graphql(`
  query BrowseModel($name: String!) {
    model(name: $name) {
      name
      nLayer
      dModel
      dMlp
      hooks(first: 100) {
        edges {
          node {
            name
            width
          }
        }
      }
      saes(first: 100) {
        totalCount
        edges {
          node {
            id
            hook
            architecture
            dSae
            k
            hasFeatureRecords
            metrics {
              ...SaeMetrics
            }
          }
        }
      }
    }
  }
`);

/** Browse one model: its SAEs with their metrics (→ features), and its hooks (→ neurons). */
export default async function ModelPage(props: { params: Promise<{ name: string }> }) {
  const name = decodeURIComponent((await props.params).name);
  let data: BrowseModelQuery | undefined;
  try {
    data = (await query({ query: MODEL, variables: { name } })).data;
  } catch (error) {
    return (
      <>
        <h1>{name}</h1>
        <ErrorBox {...describeError(error)} />
      </>
    );
  }
  if (!data) return null;
  const { model } = data;
  const neuronHooks = model.hooks.edges
    .map((e) => e.node)
    .filter((h) => /^blocks\.\d+\.mlp\.hook_post$/.test(h.name));
  return (
    <>
      <h1>{model.name}</h1>
      <p className="muted">
        {model.nLayer} layers · d_model {model.dModel} · d_mlp {model.dMlp}
      </p>
      <h2>SAEs</h2>
      {model.saes.edges.length === 0 ? (
        <p className="muted">No SAEs yet: train one on the Jobs page or import one with the CLI.</p>
      ) : (
        <div className="scroll">
          <table className="saes">
            <thead>
              <tr>
                <th>SAE</th>
                <th>hook</th>
                <th>arch.</th>
                <th>width</th>
                <MetricsHeader />
              </tr>
            </thead>
            <tbody>
              {model.saes.edges.map(({ node: sae }) => (
                <tr key={sae.id} data-sae={sae.id}>
                  <td>
                    <Link href={`/saes/${encodeURIComponent(sae.id)}`}>{sae.id}</Link>
                  </td>
                  <td>
                    <code>{sae.hook}</code>
                  </td>
                  <td>
                    {sae.architecture}
                    {sae.k ? ` k=${sae.k}` : ''}
                  </td>
                  <td>{sae.dSae}</td>
                  <MetricsCells metrics={sae.metrics} />
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Neurons</h2>
      <ul className="hooks">
        {neuronHooks.map((hook) => (
          <li key={hook.name}>
            <Link href={`/hooks/${encodeURIComponent(model.name)}/${hook.name}`}>
              <code>{hook.name}</code>
            </Link>{' '}
            · {hook.width} neurons
          </li>
        ))}
      </ul>
    </>
  );
}
