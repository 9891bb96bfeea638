import Link from 'next/link';
import { graphql } from '@/lib/gql';
import type { WorkspaceBannerFragment } from '@/lib/gql/graphql';

export const WORKSPACE_BANNER = graphql(`
  fragment WorkspaceBanner on Workspace {
    model
    offline
    status
    sae {
      id
    }
    steps {
      kind
      status
      progress
      error
    }
  }
`);

const STEP_LABELS: Record<string, string> = {
  model: 'get the model',
  capture: 'capture a slice of the corpus',
  train: 'train a small SAE',
  records: 'compute feature records',
  scores: 'explain and score units',
  shop: "index the shop catalog at the SAE's hook",
};

/**
 * The first-run demo workspace: an offline notice when the served model is the fixture, and the
 * preparation's progress. While it runs, the page reloads itself every few seconds (no JavaScript needed).
 */
export function WorkspaceBanner(props: { workspace: WorkspaceBannerFragment }) {
  const { workspace } = props;
  return (
    <aside className="workspace" aria-label="demo workspace" data-status={workspace.status}>
      {workspace.status === 'running' ? <meta httpEquiv="refresh" content="5" /> : null}
      {workspace.offline ? (
        <p className="offline" role="status">
          Offline: the Hugging Face hub could not be reached, so Loupe serves <code>{workspace.model}</code>,
          a small seeded model with random weights. Its units are not meaningful; everything else works. Start
          again with a network to get the real GPT-2.
        </p>
      ) : null}
      <p>
        Demo workspace for <code>{workspace.model}</code>:{' '}
        {workspace.status === 'done' ? (
          <>
            ready.{' '}
            {workspace.sae ? (
              <>
                <Link href={`/saes/${encodeURIComponent(workspace.sae.id)}`}>Browse its SAE features</Link>
                {' · '}
                <Link href="/shop?q=waterproof+hiking+boots">search the shop with them</Link>
                {' · '}
                <Link href="/steer">steer with them</Link>
              </>
            ) : null}
          </>
        ) : (
          workspace.status
        )}
      </p>
      <ol className="steps">
        {workspace.steps.map((step) => (
          <li key={step.kind} data-kind={step.kind} data-status={step.status}>
            {STEP_LABELS[step.kind] ?? step.kind}: {step.status}
            {step.status === 'running' ? ` (${Math.round(100 * step.progress)}%)` : null}
            {step.error ? <span className="muted"> — {step.error}</span> : null}
          </li>
        ))}
      </ol>
    </aside>
  );
}
