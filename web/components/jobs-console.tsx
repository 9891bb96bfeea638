'use client';

import { useApolloClient, useSubscription } from '@apollo/client/react';
import Link from 'next/link';
import { type FormEvent, useEffect, useState } from 'react';
import { API_KEY_STORAGE } from '@/lib/api-key';
import { graphql } from '@/lib/gql';
import type { ScoringMethod } from '@/lib/gql/graphql';
import { describeError } from '@/lib/graphql-errors';
import { scoredListPath, unitPath } from '@/lib/units';
import { ErrorBox } from './error-box';

type Kind = 'capture' | 'training' | 'scoring';
interface WatchedJob {
  kind: Kind;
  id: string;
  /** a scoring job's unit specs, for links to the scored lists */
  units?: string;
}

/** Where a scoring job's results show: each spec's hook or SAE list, ordered by score. */
function scoredLists(units: string): { href: string; label: string }[] {
  const lists = new Map<string, string>();
  for (const spec of units.split(';')) {
    const parts = spec.trim().split('/');
    if (parts.length < 3) continue;
    const [model, source] = parts;
    lists.set(scoredListPath(`${model}/${source}`), source);
  }
  return [...lists].map(([href, label]) => ({ href, label }));
}

const START_CAPTURE = graphql(`
  mutation StartCapture($input: StartCaptureInput!) {
    startCapture(input: $input) {
      id
    }
  }
`);

const START_TRAINING = graphql(`
  mutation StartTraining($input: StartTrainingInput!) {
    startTraining(input: $input) {
      id
    }
  }
`);

const START_SCORING = graphql(`
  mutation StartScoring($input: StartScoringJobInput!) {
    startScoringJob(input: $input) {
      id
    }
  }
`);

const CANCEL = graphql(`
  mutation CancelJob($id: ID!) {
    cancelJob(id: $id) {
      id
      status
    }
  }
`);

const SCORING_PROGRESS = graphql(`
  subscription ScoringProgress($id: ID!) {
    scoringJobProgress(id: $id) {
      id
      status
      method
      unitsTotal
      unitsDone
      unitsFailed
      progress
      llmCalls
      promptTokens
      completionTokens
      tokensSpent
      costUsd
      error
    }
  }
`);

const CAPTURE_PROGRESS = graphql(`
  subscription CaptureProgress($id: ID!) {
    captureJobProgress(id: $id) {
      id
      status
      phase
      model
      hooks
      windowsDone
      totalWindows
      tokensDone
      totalTokens
      error
    }
  }
`);

const TRAINING_PROGRESS = graphql(`
  subscription TrainingProgress($id: ID!) {
    trainingJobProgress(id: $id) {
      id
      status
      phase
      step
      steps
      loss
      l0
      deadFraction
      saeId
      error
    }
  }
`);

/**
 * Start jobs with an API key (kept in this browser's localStorage, sent as a Bearer token) and watch one
 * job's progress as the gateway pushes it over graphql-ws.
 */
export function JobsConsole(props: { initialJob?: WatchedJob; scoreUnits?: string }) {
  const client = useApolloClient();
  const [apiKey, setApiKey] = useState('');
  const [job, setJob] = useState(props.initialJob);
  const [error, setError] = useState<{ code: string; message: string }>();
  const [captureJobId, setCaptureJobId] = useState('');

  useEffect(() => setApiKey(window.localStorage.getItem(API_KEY_STORAGE) ?? ''), []);

  function saveKey(value: string) {
    setApiKey(value);
    window.localStorage.setItem(API_KEY_STORAGE, value);
  }

  async function start(kind: Kind, event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const text = (name: string) => String(form.get(name) ?? '').trim();
    const optionalNumber = (name: string) => (text(name) === '' ? undefined : Number(text(name)));
    setError(undefined);
    try {
      const context = { headers: { authorization: `Bearer ${apiKey}` } };
      let id: string | undefined;
      if (kind === 'capture') {
        const input = {
          hooks: text('hooks')
            .split(/[\s,]+/)
            .filter(Boolean),
          maxTokens: Number(text('maxTokens')),
          dataset: text('dataset') || 'default',
        };
        const answer = await client.mutate({
          mutation: START_CAPTURE,
          variables: { input },
          context,
        });
        id = answer.data?.startCapture.id;
      } else if (kind === 'scoring') {
        const input = {
          units: text('units'),
          method: text('method') as ScoringMethod,
          budgetTokens: optionalNumber('budgetTokens') ?? 0,
          concurrency: optionalNumber('concurrency') ?? 4,
        };
        const answer = await client.mutate({
          mutation: START_SCORING,
          variables: { input },
          context,
        });
        id = answer.data?.startScoringJob.id;
      } else {
        const input = {
          captureJobId: text('captureJobId'),
          hook: text('hook'),
          architecture: text('architecture'),
          width: Number(text('width')),
          steps: Number(text('steps')),
          k: optionalNumber('k'),
          batchSize: optionalNumber('batchSize'),
        };
        const answer = await client.mutate({
          mutation: START_TRAINING,
          variables: { input },
          context,
        });
        id = answer.data?.startTraining.id;
      }
      if (id) {
        setJob({ kind, id, units: kind === 'scoring' ? text('units') : undefined });
        window.history.replaceState(null, '', `/jobs?${kind}=${encodeURIComponent(id)}`);
      }
    } catch (failure) {
      setError(describeError(failure));
    }
  }

  return (
    <>
      <label className="api-key">
        API key (from <code>loupe apikey create</code>; kept in this browser){' '}
        <input
          name="apiKey"
          type="password"
          autoComplete="off"
          value={apiKey}
          onChange={(e) => saveKey(e.target.value)}
        />
      </label>
      <div className="job-forms">
        <form onSubmit={(e) => start('capture', e)} className="job-form capture-form">
          <h2>Capture a dataset</h2>
          <label>
            hooks <input name="hooks" defaultValue="blocks.0.mlp.hook_post" required />
          </label>
          <label>
            tokens <input name="maxTokens" type="number" min={1} defaultValue={2000} required />
          </label>
          <label>
            dataset <input name="dataset" defaultValue="default" />
          </label>
          <button type="submit">Start capture</button>
        </form>
        <form onSubmit={(e) => start('training', e)} className="job-form training-form">
          <h2>Train an SAE</h2>
          <label>
            capture job{' '}
            <input
              name="captureJobId"
              value={captureJobId}
              onChange={(e) => setCaptureJobId(e.target.value)}
              required
            />
          </label>
          <label>
            hook <input name="hook" defaultValue="blocks.0.hook_resid_pre" required />
          </label>
          <label>
            architecture{' '}
            <select name="architecture" defaultValue="topk">
              {['topk', 'batchtopk', 'relu', 'jumprelu'].map((a) => (
                <option key={a}>{a}</option>
              ))}
            </select>
          </label>
          <label>
            width <input name="width" type="number" min={1} defaultValue={512} required />
          </label>
          <label>
            k <input name="k" type="number" min={1} defaultValue={32} />
          </label>
          <label>
            steps <input name="steps" type="number" min={1} defaultValue={1000} required />
          </label>
          <label>
            batch size <input name="batchSize" type="number" min={1} placeholder="4096" />
          </label>
          <button type="submit">Start training</button>
        </form>
        <form onSubmit={(e) => start('scoring', e)} className="job-form scoring-form" id="score">
          <h2>Explain and score units</h2>
          <label>
            units{' '}
            <input
              name="units"
              placeholder="model/hook/0-99 or model/sae-id/3,7"
              defaultValue={props.scoreUnits}
              required
            />
          </label>
          <label>
            method{' '}
            <select name="method" defaultValue="SIMULATION">
              {['SIMULATION', 'DETECTION', 'FUZZING'].map((m) => (
                <option key={m} value={m}>
                  {m.toLowerCase()}
                </option>
              ))}
            </select>
          </label>
          <label>
            token budget <input name="budgetTokens" type="number" min={0} placeholder="no limit" />
          </label>
          <label>
            concurrency <input name="concurrency" type="number" min={1} max={64} defaultValue={4} />
          </label>
          <button type="submit">Start scoring</button>
        </form>
      </div>
      {error ? <ErrorBox {...error} /> : null}
      {job?.kind === 'capture' ? <CaptureWatch id={job.id} onTrain={setCaptureJobId} /> : null}
      {job?.kind === 'training' ? <TrainingWatch id={job.id} /> : null}
      {job?.kind === 'scoring' ? <ScoringWatch id={job.id} apiKey={apiKey} units={job.units} /> : null}
    </>
  );
}

function Progress(props: { done: number; total: number; label: string }) {
  return (
    <div className="progress">
      <progress value={props.done} max={Math.max(1, props.total)} />{' '}
      <span className="muted">
        {props.done.toLocaleString('en')} / {props.total.toLocaleString('en')} {props.label}
      </span>
    </div>
  );
}

function JobStatus(props: {
  kind: Kind;
  id: string;
  status?: string;
  phase?: string;
  error?: string | null;
}) {
  return (
    <p className="job-status" data-status={props.status ?? 'connecting'} data-phase={props.phase ?? ''}>
      {props.kind} job <code>{props.id}</code>: <strong>{props.status ?? 'connecting…'}</strong>
      {props.phase ? ` (${props.phase})` : null}
      {props.error ? <span className="job-error"> — {props.error}</span> : null}
    </p>
  );
}

function CaptureWatch(props: { id: string; onTrain: (id: string) => void }) {
  const { data, error } = useSubscription(CAPTURE_PROGRESS, {
    variables: { id: props.id },
  });
  const job = data?.captureJobProgress;
  return (
    <section className="job" data-job={props.id}>
      <JobStatus kind="capture" id={props.id} status={job?.status} phase={job?.phase} error={job?.error} />
      {error ? <ErrorBox {...describeError(error)} /> : null}
      {job ? <Progress done={job.tokensDone} total={job.totalTokens} label="tokens" /> : null}
      {job?.status === 'done' ? (
        <ul className="job-results">
          {job.hooks
            .filter((hook) => hook.endsWith('.mlp.hook_post'))
            .map((hook) => (
              <li key={hook}>
                <Link href={unitPath(`${job.model}/${hook}/0`)}>neurons of {hook}</Link>
              </li>
            ))}
          <li>
            <button type="button" onClick={() => props.onTrain(props.id)}>
              train an SAE on this capture
            </button>
          </li>
        </ul>
      ) : null}
    </section>
  );
}

function TrainingWatch(props: { id: string }) {
  const { data, error } = useSubscription(TRAINING_PROGRESS, {
    variables: { id: props.id },
  });
  const job = data?.trainingJobProgress;
  return (
    <section className="job" data-job={props.id}>
      <JobStatus kind="training" id={props.id} status={job?.status} phase={job?.phase} error={job?.error} />
      {error ? <ErrorBox {...describeError(error)} /> : null}
      {job ? (
        <>
          <Progress done={job.step} total={job.steps} label="steps" />
          <p className="muted">
            loss {job.loss.toPrecision(4)} · L0 {job.l0.toFixed(1)} · dead{' '}
            {(100 * job.deadFraction).toFixed(1)}%
          </p>
        </>
      ) : null}
      {job?.status === 'done' && job.saeId ? (
        <p className="job-results">
          <Link href={`/saes/${encodeURIComponent(job.saeId)}`}>SAE {job.saeId}</Link>
        </p>
      ) : null}
    </section>
  );
}

const FINISHED = ['done', 'failed', 'cancelled', 'budget_exhausted'];

function ScoringWatch(props: { id: string; apiKey: string; units?: string }) {
  const client = useApolloClient();
  const [cancelError, setCancelError] = useState<{ code: string; message: string }>();
  const { data, error } = useSubscription(SCORING_PROGRESS, {
    variables: { id: props.id },
  });
  const job = data?.scoringJobProgress;
  async function cancel() {
    setCancelError(undefined);
    try {
      await client.mutate({
        mutation: CANCEL,
        variables: { id: props.id },
        context: { headers: { authorization: `Bearer ${props.apiKey}` } },
      });
    } catch (failure) {
      setCancelError(describeError(failure));
    }
  }
  return (
    <section className="job" data-job={props.id}>
      <JobStatus kind="scoring" id={props.id} status={job?.status} error={job?.error} />
      {error ? <ErrorBox {...describeError(error)} /> : null}
      {cancelError ? <ErrorBox {...cancelError} /> : null}
      {job ? (
        <>
          <Progress done={job.unitsDone + job.unitsFailed} total={job.unitsTotal} label="units" />
          <p
            className="muted running-cost"
            data-tokens={job.tokensSpent}
            data-calls={job.llmCalls}
            data-cost-usd={job.costUsd}
          >
            {job.method.toLowerCase()} · {job.unitsFailed} failed · running cost: {job.llmCalls} LLM calls,{' '}
            {job.promptTokens.toLocaleString('en')} prompt + {job.completionTokens.toLocaleString('en')}{' '}
            completion tokens, {job.costUsd > 0 ? `$${job.costUsd.toFixed(4)}` : 'unpriced'}
          </p>
        </>
      ) : null}
      {job && FINISHED.includes(job.status) && props.units ? (
        <ul className="job-results">
          {scoredLists(props.units).map((list) => (
            <li key={list.href}>
              <Link href={list.href}>{list.label} by score</Link>
            </li>
          ))}
        </ul>
      ) : null}
      {job && !FINISHED.includes(job.status) ? (
        <button type="button" className="cancel" onClick={cancel}>
          Cancel
        </button>
      ) : null}
    </section>
  );
}
