import Link from 'next/link';
import { ErrorBox } from '@/components/error-box';
import { MetricsCells, MetricsHeader } from '@/components/sae-metrics';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import type { BrowseModelQuery } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';
import { captureCommand, type RecordedHook, recordedHooks } from '@/lib/recorded-hooks';

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
  let recorded: RecordedHook[] = [];
  try {
    data = (await query({ query: MODEL, variables: { name } })).data;
    if (data)
      recorded = await recordedHooks(
        data.model.name,
        data.model.hooks.edges.map((e) => e.node),
      );
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
  const have = new Set(recorded.map((h) => h.name));
  const unrecorded = model.hooks.edges
    .map((e) => e.node.name)
    .filter((h) => /^blocks\.\d+\.mlp\.hook_post$/.test(h) && !have.has(h));
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
      {recorded.length === 0 ? <p className="muted">No neuron hook has records yet.</p> : null}
      <ul className="hooks">
        {recorded.map((hook) => (
          <li key={hook.name}>
            <Link href={`/hooks/${encodeURIComponent(model.name)}/${hook.name}`}>
              <code>{hook.name}</code>
            </Link>{' '}
            · {hook.neurons} neurons with records
          </li>
        ))}
      </ul>
      {unrecorded.length > 0 ? (
        <p className="muted capture-hint">
          No records yet at{' '}
          {unrecorded.length === 1 ? 'one neuron hook' : `${unrecorded.length} neuron hooks`} (
          {unrecorded.map((h, i) => (
            <span key={h}>
              {i > 0 ? ', ' : null}
              <code>{h}</code>
            </span>
          ))}
          ): capture them with <code>{captureCommand(model.name, unrecorded)}</code>, or start a capture job
          on the <Link href="/jobs">Jobs page</Link>.
        </p>
      ) : null}
    </>
  );
}
