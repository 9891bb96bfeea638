import { GraphBuilder } from '@loupe/common';
import { executionProvider } from '@loupe/common/metrics';
import { describe, expect, it } from 'vitest';
import { openSession } from './sessions.js';

// Each session is counted under the service that opened it, so one process running every service
// (`loupe serve`) still tells capture's sessions from the SAE service's.
function identityGraph(): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('x', 'float32', [2]);
  g.op('Identity', [x], {}, 'y');
  g.output('y', 'float32', [2]);
  return g.encode({ graphName: 'identity', opset: 20 });
}

async function count(service: string): Promise<number> {
  const metric = await executionProvider.get();
  return metric.values.find((v) => v.labels.service === service && v.labels.provider === 'cpu')?.value ?? 0;
}

describe('openSession', () => {
  it('counts the session under its owner, and under `cli` when none is named', async () => {
    const [sae, cli] = [await count('sae'), await count('cli')];
    const owned = await openSession(identityGraph(), { device: 'cpu', intraOpThreads: 1, owner: 'sae' });
    const anonymous = await openSession(identityGraph(), { device: 'cpu', intraOpThreads: 1 });
    expect(owned.provider).toBe('cpu');
    expect(await count('sae')).toBe(sae + 1);
    expect(await count('cli')).toBe(cli + 1);
    await owned.session.release();
    await anonymous.session.release();
  });
});
