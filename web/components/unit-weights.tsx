import Link from 'next/link';
import { graphql } from '@/lib/gql';
import type { NeuronConnectionItemFragment, UnitWeightsFragment } from '@/lib/gql/graphql';
import { formatValue, unitPath } from '@/lib/units';

/**
 * What a unit's direction in the residual stream says, for neurons and features alike: the tokens whose
 * logits it raises and lowers most, and the units nearest to it by cosine (a neuron's across all layers
 * as well as in its own).
 */
export const UNIT_WEIGHTS = graphql(`
  fragment UnitWeights on Unit {
    __typename
    positiveLogits {
      token {
        id
        text
      }
      value
    }
    negativeLogits {
      token {
        id
        text
      }
      value
    }
    nearest(first: 10) {
      totalCount
      edges {
        cosine
        node {
          id
          index
        }
      }
    }
    ... on Neuron {
      positiveInputTokens {
        token {
          id
          text
        }
        value
      }
      negativeInputTokens {
        token {
          id
          text
        }
        value
      }
      connections {
        upstreamPositive {
          ...NeuronConnectionItem
        }
        upstreamNegative {
          ...NeuronConnectionItem
        }
        downstreamPositive {
          ...NeuronConnectionItem
        }
        downstreamNegative {
          ...NeuronConnectionItem
        }
      }
      nearestAcrossLayers: nearest(first: 10, acrossLayers: true) {
        totalCount
        edges {
          cosine
          node {
            id
            index
            ... on Neuron {
              layer
            }
          }
        }
      }
    }
  }
`);

export const NEURON_CONNECTION = graphql(`
  fragment NeuronConnectionItem on NeuronConnection {
    weight
    neuron {
      id
      index
      layer
    }
  }
`);

type Neighbours = UnitWeightsFragment['nearest'];
type Connection = NeuronConnectionItemFragment;

export function UnitWeights(props: { unit: UnitWeightsFragment }) {
  const { unit } = props;
  const neuron = unit.__typename === 'Neuron';
  return (
    <>
      <div className="logits">
        <LogitList title="Positive logits" className="positive-logits" tokens={unit.positiveLogits} />
        <LogitList title="Negative logits" className="negative-logits" tokens={unit.negativeLogits} />
      </div>
      <NearestList
        title={neuron ? 'Nearest neurons in this layer' : 'Nearest features'}
        className="nearest"
        what={neuron ? 'output directions' : 'decoder directions'}
        list={unit.nearest}
      />
      {unit.__typename === 'Neuron' ? (
        <>
          <NearestList
            title="Nearest neurons in any layer"
            className="nearest-across-layers"
            what="output directions"
            list={unit.nearestAcrossLayers}
            label={(node) => ('layer' in node ? `L${node.layer}/${node.index}` : String(node.index))}
          />
          <div className="logits">
            <LogitList
              title="Input tokens (raise)"
              className="positive-input-tokens"
              tokens={unit.positiveInputTokens}
            />
            <LogitList
              title="Input tokens (lower)"
              className="negative-input-tokens"
              tokens={unit.negativeInputTokens}
            />
          </div>
          <div className="connections">
            <ConnectionList
              title="Upstream, exciting"
              className="upstream-positive"
              list={unit.connections.upstreamPositive}
            />
            <ConnectionList
              title="Upstream, inhibiting"
              className="upstream-negative"
              list={unit.connections.upstreamNegative}
            />
            <ConnectionList
              title="Downstream, exciting"
              className="downstream-positive"
              list={unit.connections.downstreamPositive}
            />
            <ConnectionList
              title="Downstream, inhibiting"
              className="downstream-negative"
              list={unit.connections.downstreamNegative}
            />
          </div>
        </>
      ) : null}
    </>
  );
}

/**
 * Neurons by OpenAI's connection weight (c_proj · diag(ln_2.g) · c_fc): empty upstream of layer 0 and
 * downstream of the last layer, which the page says rather than leaving a blank.
 */
function ConnectionList(props: { title: string; className: string; list: Connection[] }) {
  return (
    <section className={props.className}>
      <h2>{props.title}</h2>
      {props.list.length === 0 ? (
        <p className="muted">none: no layer on this side</p>
      ) : (
        <ul>
          {props.list.map((c) => (
            <li key={c.neuron.id}>
              <Link href={unitPath(c.neuron.id)} data-weight={c.weight}>
                L{c.neuron.layer}/{c.neuron.index}
              </Link>{' '}
              <span className="muted">{formatValue(c.weight)}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function LogitList(props: {
  title: string;
  className: string;
  tokens: UnitWeightsFragment['positiveLogits'];
}) {
  return (
    <section className={props.className}>
      <h2>{props.title}</h2>
      <table>
        <tbody>
          {props.tokens.map((t) => (
            <tr key={t.token.id} data-token-id={t.token.id} data-value={t.value}>
              <td>
                <code>{JSON.stringify(t.token.text)}</code>
              </td>
              <td>{formatValue(t.value)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function NearestList(props: {
  title: string;
  className: string;
  what: string;
  list: Neighbours;
  label?: (node: Neighbours['edges'][number]['node'] & { layer?: number }) => string;
}) {
  return (
    <section className={props.className}>
      <h2>{props.title}</h2>
      <p className="muted">
        by cosine of {props.what}, of {props.list.totalCount.toLocaleString('en')} others
      </p>
      <ul>
        {props.list.edges.map((e) => (
          <li key={e.node.id}>
            <Link href={unitPath(e.node.id)} data-cosine={e.cosine}>
              {props.label ? props.label(e.node) : e.node.index}
            </Link>{' '}
            <span className="muted">{e.cosine.toFixed(3)}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
