import { describe, expect, it } from 'vitest';
import { toGrpcError } from '../grpc/status.js';
import { isDatabaseUnavailable, retryWhileUnavailable } from './connection-errors.js';

describe('isDatabaseUnavailable', () => {
  it('knows a database that went away from a query that was wrong', () => {
    const coded = (code: string) => Object.assign(new Error(code), { code });
    for (const code of ['ECONNREFUSED', 'CONNECTION_CLOSED', 'CONNECT_TIMEOUT', '57P01', '08006'])
      expect(isDatabaseUnavailable(coded(code)), code).toBe(true);
    for (const code of ['42P01', '23505', '22P02'])
      expect(isDatabaseUnavailable(coded(code)), code).toBe(false);
    expect(isDatabaseUnavailable(new Error('plain'))).toBe(false);
    expect(isDatabaseUnavailable(null)).toBe(false);
  });

  it('leaves a service as UNAVAILABLE, not as an internal error', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5439'), { code: 'ECONNREFUSED' });
    expect(toGrpcError(refused)).toMatchObject({ code: 14, loupeCode: 'UNAVAILABLE' });
    expect(toGrpcError(refused).message).not.toMatch(/127\.0\.0\.1/);
  });
});

describe('retryWhileUnavailable', () => {
  const unavailable = () => Object.assign(new Error('gone'), { code: 'ECONNREFUSED' });

  it('waits out an unreachable database and returns the first success', async () => {
    let calls = 0;
    const value = await retryWhileUnavailable(async () => {
      if (++calls < 3) throw unavailable();
      return 'ok';
    });
    expect([value, calls]).toEqual(['ok', 3]);
  });

  it('throws other errors at once, and an outage that outlasts its time', async () => {
    let calls = 0;
    const wrong = Object.assign(new Error('syntax'), { code: '42601' });
    await expect(
      retryWhileUnavailable(async () => {
        calls++;
        throw wrong;
      }),
    ).rejects.toBe(wrong);
    expect(calls).toBe(1);
    await expect(
      retryWhileUnavailable(
        async () => {
          throw unavailable();
        },
        { forMs: 250 },
      ),
    ).rejects.toThrow('gone');
  });
});
