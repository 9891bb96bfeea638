import { describe, expect, it } from 'vitest';
import { ComputeSlots } from './compute-slots.js';

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe('ComputeSlots', () => {
  it('runs at most perClient per client, queues the next ones in order, refuses past the queue', async () => {
    const slots = new ComputeSlots(2, 1);
    const gates = [gate(), gate(), gate()];
    const order: number[] = [];
    const runs = gates.map((g, i) =>
      slots.run('a', undefined, async () => {
        order.push(i);
        await g.opened;
        return i;
      }),
    );
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([0, 1]);
    expect(slots.load('a')).toEqual({ running: 2, waiting: 1 });
    await expect(slots.run('a', undefined, async () => 9)).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    // another client is not held up by the first one's queue
    await expect(slots.run('b', undefined, async () => 'b')).resolves.toBe('b');
    gates[0].open();
    expect(await runs[0]).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([0, 1, 2]);
    gates[1].open();
    gates[2].open();
    expect(await Promise.all(runs)).toEqual([0, 1, 2]);
    expect(slots.load('a')).toEqual({ running: 0, waiting: 0 });
  });

  it('drops a waiting call whose request is aborted, and runs none for an aborted request', async () => {
    const slots = new ComputeSlots(1, 4);
    const first = gate();
    const running = slots.run('a', undefined, () => first.opened);
    const controller = new AbortController();
    let ran = false;
    const waiting = slots.run('a', controller.signal, async () => {
      ran = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(slots.load('a').waiting).toBe(1);
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    expect(slots.load('a').waiting).toBe(0);
    first.open();
    await running;
    expect(ran).toBe(false);
    await expect(slots.run('a', controller.signal, async () => 1)).rejects.toThrow('gone');
    expect(slots.load('a')).toEqual({ running: 0, waiting: 0 });
  });
});
