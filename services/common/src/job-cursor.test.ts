import { describe, expect, it } from 'vitest';
import { compareJobsNewestFirst, jobCursor, parseJobCursor } from './job-cursor.js';

describe('job cursors', () => {
  it('round-trip a position and refuse anything else', () => {
    const position = { createdAt: '2026-12-07T18:52:21.123456Z', id: '7d3c1e52-95a4-4e7a-8a7e-2b6f0c1d9e33' };
    expect(parseJobCursor(jobCursor(position))).toEqual(position);
    // an offset cursor of another connection, a truncated time, an id that is not a UUID
    for (const bad of [
      Buffer.from('o:20').toString('base64url'),
      jobCursor({ ...position, createdAt: '2026-12-07T18:52:21Z' }),
      jobCursor({ ...position, id: "x' OR 1=1" }),
    ])
      expect(() => parseJobCursor(bad)).toThrow(/is not one a job list gave out/);
  });

  it('order newest first, then by id, as ORDER BY created_at DESC, id DESC does', () => {
    const jobs = [
      { createdAt: '2026-01-01T00:00:01.000000Z', id: '00000000-0000-4000-8000-000000000001' },
      { createdAt: '2026-01-01T00:00:01.000001Z', id: '00000000-0000-4000-8000-000000000000' },
      { createdAt: '2026-01-01T00:00:01.000001Z', id: 'f0000000-0000-4000-8000-000000000000' },
    ];
    expect([...jobs].sort(compareJobsNewestFirst)).toEqual([jobs[2], jobs[1], jobs[0]]);
  });
});
