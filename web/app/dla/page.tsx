import { ErrorBox } from '@/components/error-box';
import { query } from '@/lib/apollo';
import { graphql } from '@/lib/gql';
import type { DlaPageQuery } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';

export const dynamic = 'force-dynamic';

const DLA = graphql(`
  query DlaPage($text: String!, $token: String!, $wrong: String) {
    directLogitAttribution(text: $text, token: $token, wrong: $wrong) {
      token
      wrong
      logit
      layers {
        layer
        heads
        mlp
      }
      embed
    }
  }
`);

/** Direct logit attribution as bars: every head and MLP's share of a logit (difference). */
export default async function DlaPage(props: {
  searchParams: Promise<{ text?: string; token?: string; wrong?: string }>;
}) {
  const { text, token, wrong } = await props.searchParams;
  let dla: DlaPageQuery['directLogitAttribution'] | undefined;
  let failure: { code: string; message: string } | undefined;
  if (text && token) {
    try {
      dla = (await query({ query: DLA, variables: { text, token, wrong: wrong || null } })).data
        ?.directLogitAttribution;
    } catch (error) {
      failure = describeError(error);
    }
  }
  const bars = dla
    ? dla.layers.flatMap((l) => [
        ...l.heads.map((value, h) => ({ label: `L${l.layer}H${h}`, value })),
        { label: `L${l.layer} MLP`, value: l.mlp },
      ])
    : [];
  const scale = Math.max(1e-9, ...bars.map((b) => Math.abs(b.value)));
  return (
    <>
      <h1>Direct logit attribution</h1>
      <p className="muted">
        Each head's and MLP's direct contribution to the last position's logit (or logit difference), through
        the final LayerNorm's scale frozen from the run.
      </p>
      <form method="get" action="/dla" className="search-form">
        <textarea name="text" rows={2} defaultValue={text ?? ''} required />
        <input name="token" defaultValue={token ?? ''} placeholder="token, e.g. ' Mary'" required />
        <input name="wrong" defaultValue={wrong ?? ''} placeholder="wrong token (optional)" />
        <button type="submit">Attribute</button>
      </form>
      {failure ? <ErrorBox {...failure} /> : null}
      {dla ? (
        <>
          <p className="muted" data-logit={dla.logit}>
            logit{dla.wrong ? ' difference' : ''} {dla.logit.toFixed(3)}
          </p>
          <ul className="dla-bars">
            {bars.map((bar) => (
              <li key={bar.label} data-label={bar.label} data-value={bar.value}>
                <span className="label">{bar.label}</span>
                <span
                  className="bar"
                  style={{
                    display: 'inline-block',
                    width: `${(40 * Math.abs(bar.value)) / scale}%`,
                    height: '0.8em',
                    backgroundColor: bar.value >= 0 ? '#2563eb' : '#dc2626',
                  }}
                />{' '}
                {bar.value.toFixed(3)}
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </>
  );
}
