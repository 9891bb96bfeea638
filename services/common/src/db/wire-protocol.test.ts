import { describe, expect, it } from 'vitest';
import {
  errorResponse,
  queryMessage,
  ReplyTracker,
  readMessages,
  readStartupFrame,
} from './wire-protocol.js';

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

const ready = (status: string) => message('Z', Buffer.from(status));

describe('wire protocol framing', () => {
  it('reads a startup packet and its parameters', () => {
    const body = Buffer.from('user\0postgres\0search_path\0"sae", public\0\0');
    const packet = Buffer.alloc(8 + body.length);
    packet.writeInt32BE(packet.length, 0);
    packet.writeInt32BE(196608, 4);
    body.copy(packet, 8);
    const read = readStartupFrame(Buffer.concat([packet, Buffer.from('Q')]));
    expect(read?.size).toBe(packet.length);
    expect(read?.frame).toMatchObject({
      kind: 'startup',
      params: { user: 'postgres', search_path: '"sae", public' },
    });
    expect(readStartupFrame(packet.subarray(0, 10))).toBeNull();
  });

  it('recognises SSL and cancel requests', () => {
    const ssl = Buffer.alloc(8);
    ssl.writeInt32BE(8, 0);
    ssl.writeInt32BE(80877103, 4);
    expect(readStartupFrame(ssl)?.frame.kind).toBe('ssl');
    const cancel = Buffer.alloc(16);
    cancel.writeInt32BE(16, 0);
    cancel.writeInt32BE(80877102, 4);
    expect(readStartupFrame(cancel)?.frame.kind).toBe('cancel');
  });

  it('splits complete messages and keeps a partial one', () => {
    const q = queryMessage('select 1');
    const both = Buffer.concat([q, q]);
    const read = readMessages(both.subarray(0, q.length + 3));
    if ('error' in read) throw new Error(read.error);
    expect(read.messages).toHaveLength(1);
    expect(read.messages[0].equals(q)).toBe(true);
    expect(read.rest.length).toBe(3);
    expect(readMessages(Buffer.from([0x51, 0, 0, 0, 1]))).toEqual({ error: 'bad message length 1' });
  });
});

describe('ReplyTracker', () => {
  it('finds a final ReadyForQuery across arbitrary chunk boundaries', () => {
    // A DataRow whose payload looks like a ReadyForQuery must not fool it.
    const reply = Buffer.concat([
      message('D', Buffer.from('Z\0\0\0\x05I')),
      message('C', Buffer.from('SELECT 1\0')),
      ready('T'),
    ]);
    for (let cut = 0; cut <= reply.length; cut++) {
      const t = new ReplyTracker();
      t.push(reply.subarray(0, cut));
      t.push(reply.subarray(cut));
      expect(t.readyStatus()).toBe('T');
    }
    const partial = new ReplyTracker();
    partial.push(reply.subarray(0, reply.length - 1));
    expect(partial.readyStatus()).toBeNull();
  });

  it('reports no ReadyForQuery when the reply stops mid exchange', () => {
    const t = new ReplyTracker();
    t.push(message('1', Buffer.alloc(0)));
    t.push(message('2', Buffer.alloc(0)));
    expect(t.readyStatus()).toBeNull();
    const e = new ReplyTracker();
    e.push(Buffer.concat([errorResponse('ERROR', '42601', 'syntax error'), ready('E')]));
    expect(e.hadError()).toBe(true);
    expect(e.readyStatus()).toBe('E');
  });
});
