// Just enough of the Postgres v3 wire protocol to multiplex clients onto one PGlite backend: we
// frame client messages, recognise the few pre-startup requests, and watch the backend's replies
// for ReadyForQuery. Everything else is passed through to PGlite untouched.

export const PROTOCOL_V3 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

// A client that claims a bigger message than this is broken or hostile; real Postgres caps
// ordinary messages at 1 GB too.
const MAX_MESSAGE_BYTES = 1 << 30;

export type StartupFrame =
  | { kind: 'startup'; bytes: Buffer; params: Record<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel' }
  | { kind: 'invalid'; reason: string };

/** Reads the untyped message a client sends first; `null` while more bytes are needed. */
export function readStartupFrame(buf: Buffer): { frame: StartupFrame; size: number } | null {
  if (buf.length < 8) return null;
  const size = buf.readInt32BE(0);
  if (size < 8 || size > 10_000)
    return { frame: { kind: 'invalid', reason: 'bad startup length' }, size: buf.length };
  if (buf.length < size) return null;
  const code = buf.readInt32BE(4);
  if (code === SSL_REQUEST) return { frame: { kind: 'ssl' }, size };
  if (code === GSSENC_REQUEST) return { frame: { kind: 'gssenc' }, size };
  if (code === CANCEL_REQUEST) return { frame: { kind: 'cancel' }, size };
  if (code !== PROTOCOL_V3)
    return { frame: { kind: 'invalid', reason: `unsupported protocol ${code}` }, size };
  const bytes = Buffer.from(buf.subarray(0, size));
  return { frame: { kind: 'startup', bytes, params: parseStartupParams(bytes) }, size };
}

function parseStartupParams(bytes: Buffer): Record<string, string> {
  const params: Record<string, string> = {};
  const fields = bytes.toString('utf8', 8, bytes.length).split('\0');
  for (let i = 0; i + 1 < fields.length && fields[i] !== ''; i += 2) params[fields[i]] = fields[i + 1];
  return params;
}

/** Splits complete typed messages off the front of `buf`; returns them and the unread rest. */
export function readMessages(buf: Buffer): { messages: Buffer[]; rest: Buffer } | { error: string } {
  const messages: Buffer[] = [];
  let offset = 0;
  while (buf.length - offset >= 5) {
    const length = buf.readInt32BE(offset + 1);
    if (length < 4 || length > MAX_MESSAGE_BYTES) return { error: `bad message length ${length}` };
    if (buf.length - offset < 1 + length) break;
    // Copy out: the socket's buffer is reused and PGlite may read the message later.
    messages.push(Buffer.from(buf.subarray(offset, offset + 1 + length)));
    offset += 1 + length;
  }
  return { messages, rest: offset === 0 ? buf : Buffer.from(buf.subarray(offset)) };
}

export function messageType(message: Uint8Array): string {
  return String.fromCharCode(message[0]);
}

/** A simple-protocol Query message; used for the server's own housekeeping statements. */
export function queryMessage(text: string): Buffer {
  const body = Buffer.from(`${text}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('Q', 0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

export const SYNC_MESSAGE = Buffer.from([0x53, 0, 0, 0, 4]);

export function copyFailMessage(reason: string): Buffer {
  const body = Buffer.from(`${reason}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('f', 0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/** An ErrorResponse clients show as a normal Postgres error (severity, SQLSTATE, message). */
export function errorResponse(severity: 'ERROR' | 'FATAL', code: string, message: string): Buffer {
  const fields = [`S${severity}`, `V${severity}`, `C${code}`, `M${message}`].map((f) => `${f}\0`).join('');
  const body = Buffer.from(`${fields}\0`, 'utf8');
  const head = Buffer.alloc(5);
  head.write('E', 0);
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

/**
 * Follows message framing through a backend reply that arrives in arbitrary chunks, so the
 * multiplexer knows whether the reply ended with ReadyForQuery and with which transaction status.
 * Looking only at the last bytes could be fooled by row data that happens to look like one.
 */
export class ReplyTracker {
  private header = Buffer.alloc(5);
  private headerBytes = 0;
  private bodyLeft = 0;
  private type = 0;
  private lastType = 0;
  private status = 0;
  private sawError = false;

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.bodyLeft === 0) {
        const take = Math.min(5 - this.headerBytes, chunk.length - i);
        this.header.set(chunk.subarray(i, i + take), this.headerBytes);
        this.headerBytes += take;
        i += take;
        if (this.headerBytes < 5) return;
        this.headerBytes = 0;
        this.type = this.header[0];
        this.lastType = this.type;
        if (this.type === 0x45) this.sawError = true;
        this.bodyLeft = this.header.readInt32BE(1) - 4;
        continue;
      }
      // ReadyForQuery's one-byte body is its transaction status: I (idle), T (in a block), E (failed block).
      if (this.type === 0x5a) this.status = chunk[i];
      const take = Math.min(this.bodyLeft, chunk.length - i);
      this.bodyLeft -= take;
      i += take;
    }
  }

  /** The transaction status if the reply so far ends with a complete ReadyForQuery, else null. */
  readyStatus(): 'I' | 'T' | 'E' | null {
    if (this.lastType !== 0x5a || this.bodyLeft !== 0 || this.headerBytes !== 0) return null;
    const s = String.fromCharCode(this.status);
    return s === 'I' || s === 'T' || s === 'E' ? s : null;
  }

  hadError(): boolean {
    return this.sawError;
  }
}
