import { createServer, type Server, type Socket } from 'node:net';
import type { PGlite } from '@electric-sql/pglite';
import {
  copyFailMessage,
  errorResponse,
  messageType,
  queryMessage,
  ReplyTracker,
  readMessages,
  readStartupFrame,
  SYNC_MESSAGE,
} from './wire-protocol.js';

// PGlite is one Postgres backend: one session, one transaction at a time. This server lets many
// clients share it the way they would share a real server, by giving one client the backend from
// its first message until the backend is idle again (ReadyForQuery with status I). A client is
// therefore never interleaved with another one in the middle of an extended-protocol exchange
// (Parse/Bind/Execute/Sync) or inside a transaction block; the others queue.
//
// We do not use @electric-sql/pglite-socket's PGLiteSocketServer (0.2.17) because its queue hands
// the backend over after every single message unless a transaction block is open. Measured here:
// a Sync from client B landing between client A's Bind and Execute destroys A's portal; unnamed
// statements (postgres.js `sql.unsafe(text, params)`) from two clients clobber each other (99 of
// 200 failed); and an error in A's Parse wedges B forever, because the backend discards B's
// messages while it skips to A's Sync.
//
// Session state that is not per transaction is still shared by all clients (it is one backend):
// session GUCs set with SET, session-level advisory locks, LISTEN, temp tables, prepared statement
// names. The one piece we keep per client is search_path from the startup packet, re-applied
// whenever the backend changes hands, so services can each use their own schema.

export interface WireServerOptions {
  host: string;
  port: number;
  maxConnections: number;
  /** Disconnect a client that holds the backend (open transaction or unfinished exchange) idle this long; 0 = never. */
  idleInTransactionTimeoutMs: number;
  onError?: (err: Error) => void;
}

interface Session {
  readonly socket: Socket;
  chunks: Buffer[];
  buffered: number;
  /** Bytes needed before the next frame can be complete; 0 when unknown. */
  needed: number;
  startup: Buffer | null;
  started: boolean;
  pending: Buffer[];
  searchPath: string;
  closed: boolean;
}

export class PgliteWireServer {
  private server: Server | null = null;
  private readonly sessions = new Set<Session>();
  private readonly waiting: Session[] = [];
  private owner: Session | null = null;
  private pumping: Promise<void> | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private appliedSearchPath: string | null = null;
  private defaultSearchPath = 'public';
  private stopping = false;

  constructor(
    private readonly db: PGlite,
    private readonly opts: WireServerOptions,
  ) {}

  /** Starts listening; resolves with the bound port once connections are accepted. */
  async listen(): Promise<number> {
    const row = await this.db.query<{ search_path: string }>('SHOW search_path');
    this.defaultSearchPath = row.rows[0]?.search_path ?? 'public';
    this.appliedSearchPath = this.defaultSearchPath;
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.report(err));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('embedded Postgres: no TCP address');
    return address.port;
  }

  /** Stops accepting, disconnects clients, rolls back what they left open, then resolves. */
  async close(): Promise<void> {
    this.stopping = true;
    const server = this.server;
    this.server = null;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const s of this.sessions) s.socket.destroy();
    await closed;
    // Socket 'close' handlers may queue a clean-up of the owner's backend state.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.pumping) await this.pumping;
    this.clearIdleTimer();
  }

  stats(): { connections: number; waiting: number; busy: boolean } {
    return { connections: this.sessions.size, waiting: this.waiting.length, busy: this.owner !== null };
  }

  private accept(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const s: Session = {
      socket,
      chunks: [],
      buffered: 0,
      needed: 0,
      startup: null,
      started: false,
      pending: [],
      searchPath: this.defaultSearchPath,
      closed: false,
    };
    this.sessions.add(s);
    socket.on('data', (chunk: Buffer) => this.onData(s, chunk));
    socket.on('error', () => {
      // 'close' follows and does the clean-up; a reset by the client is not our error.
    });
    socket.on('close', () => this.onClose(s));
  }

  private onData(s: Session, chunk: Buffer): void {
    if (s.closed) return;
    s.chunks.push(chunk);
    s.buffered += chunk.length;
    // Large messages arrive in many chunks: only join them once the whole frame is here.
    if (s.needed > 0 && s.buffered < s.needed) return;
    let buf = s.chunks.length === 1 ? s.chunks[0] : Buffer.concat(s.chunks);
    if (!s.started) {
      const rest = this.readStartup(s, buf);
      if (rest === null) return;
      buf = rest;
    }
    const read = readMessages(buf);
    if ('error' in read) {
      this.fail(s, '08P01', read.error);
      return;
    }
    this.keep(s, read.rest);
    let queued = false;
    for (const message of read.messages) {
      if (messageType(message) === 'X') {
        // Terminate is the client's goodbye; PGlite must not see it (there is only one backend).
        s.socket.end();
        break;
      }
      s.pending.push(message);
      queued = true;
    }
    if (queued) this.enqueue(s);
  }

  /** Handles the untyped frames before startup; returns the bytes after them, or null to wait. */
  private readStartup(s: Session, input: Buffer): Buffer | null {
    let buf = input;
    for (;;) {
      const read = readStartupFrame(buf);
      if (read === null) {
        this.keep(s, buf);
        return null;
      }
      buf = buf.subarray(read.size);
      const { frame } = read;
      if (frame.kind === 'ssl' || frame.kind === 'gssenc') {
        // Loopback only: no TLS. 'N' tells the client to carry on in plain text.
        s.socket.write('N');
        continue;
      }
      if (frame.kind === 'cancel') {
        // There is no second backend that could be interrupted; Postgres closes these silently too.
        s.socket.destroy();
        return null;
      }
      if (frame.kind === 'invalid') {
        this.fail(s, '08P01', frame.reason);
        return null;
      }
      const started = [...this.sessions].filter((o) => o.started).length;
      if (started >= this.opts.maxConnections) {
        this.fail(
          s,
          '53300',
          `sorry, too many clients already (embedded server allows ${this.opts.maxConnections})`,
        );
        return null;
      }
      s.started = true;
      s.startup = frame.bytes;
      // PGlite ignores startup parameters; the multiplexer applies search_path itself.
      if (frame.params.search_path) s.searchPath = frame.params.search_path;
      this.enqueue(s);
      return buf;
    }
  }

  private keep(s: Session, rest: Buffer): void {
    s.chunks = rest.length > 0 ? [rest] : [];
    s.buffered = rest.length;
    s.needed = rest.length >= 5 && s.started ? 1 + rest.readInt32BE(1) : 0;
  }

  private fail(s: Session, code: string, message: string): void {
    s.socket.end(errorResponse('FATAL', code, message));
    s.socket.destroySoon();
    s.closed = true;
  }

  private onClose(s: Session): void {
    s.closed = true;
    s.pending = [];
    this.sessions.delete(s);
    const i = this.waiting.indexOf(s);
    if (i >= 0) this.waiting.splice(i, 1);
    if (this.owner === s) {
      this.clearIdleTimer();
      this.kick();
    }
  }

  private enqueue(s: Session): void {
    if (s === this.owner) this.clearIdleTimer();
    else if (!this.waiting.includes(s)) this.waiting.push(s);
    this.kick();
  }

  private kick(): void {
    if (this.pumping) return;
    this.pumping = this.pump()
      .catch((err: unknown) => {
        this.report(err);
        // Drop the client we were serving, so a backend that keeps failing cannot spin this loop.
        this.owner?.socket.destroy();
        this.owner = null;
      })
      .finally(() => {
        this.pumping = null;
        if (this.hasWork()) this.kick();
      });
  }

  private hasWork(): boolean {
    const owner = this.owner;
    if (owner) return owner.closed || owner.pending.length > 0;
    return this.waiting.length > 0;
  }

  private async pump(): Promise<void> {
    for (;;) {
      const s = this.owner ?? this.waiting.shift();
      if (!s) return;
      if (s.closed) {
        if (this.owner === s) await this.abandon();
        continue;
      }
      if (s.startup) {
        const startup = s.startup;
        s.startup = null;
        await this.execute(s, startup);
        // We cannot tell what PGlite resets on a startup packet; re-apply search_path next time.
        this.appliedSearchPath = null;
        this.requeue(s);
        continue;
      }
      if (s.pending.length === 0) {
        if (this.owner !== s) continue;
        // The owner is between messages (open transaction or mid exchange): everyone waits for it.
        this.armIdleTimer(s);
        return;
      }
      if (this.owner !== s) {
        this.owner = s;
        if (this.appliedSearchPath !== s.searchPath) await this.applySearchPath(s.searchPath);
      }
      const batch = s.pending.splice(0);
      // PGlite runs several concatenated messages in one call, about twice as fast as one by one.
      const status = await this.execute(s, batch.length === 1 ? batch[0] : Buffer.concat(batch));
      if (status === 'I') {
        this.owner = null;
        this.requeue(s);
      }
    }
  }

  private requeue(s: Session): void {
    if (s.pending.length > 0 && !s.closed && !this.waiting.includes(s)) this.waiting.push(s);
  }

  private async execute(s: Session, message: Buffer): Promise<'I' | 'T' | 'E' | null> {
    const reply = new ReplyTracker();
    try {
      await this.db.runExclusive(() =>
        this.db.execProtocolRawStream(message, {
          onRawData: (data) => {
            reply.push(data);
            // The data may be a view into wasm memory that PGlite reuses: copy before queueing.
            if (!s.closed) s.socket.write(Buffer.from(data));
          },
        }),
      );
    } catch (err) {
      // SQL errors come back as ErrorResponse messages; a throw here is PGlite itself failing.
      this.report(err);
      s.socket.destroy();
      s.closed = true;
      return null;
    }
    return reply.readyStatus();
  }

  /** Returns the backend to idle after its owner vanished mid-exchange or mid-transaction. */
  private async abandon(): Promise<void> {
    this.owner = null;
    this.clearIdleTimer();
    const synced = await this.housekeeping(SYNC_MESSAGE);
    // Sync is ignored in COPY IN mode; CopyFail ends the copy.
    if (synced.readyStatus() === null)
      await this.housekeeping(Buffer.concat([copyFailMessage('client gone'), SYNC_MESSAGE]));
    if (this.db.isInTransaction()) await this.housekeeping(queryMessage('ROLLBACK'));
  }

  private async applySearchPath(path: string): Promise<void> {
    const literal = path.replaceAll("'", "''");
    const reply = await this.housekeeping(
      queryMessage(`SELECT pg_catalog.set_config('search_path', '${literal}', false)`),
    );
    this.appliedSearchPath = reply.hadError() ? null : path;
  }

  private async housekeeping(message: Buffer): Promise<ReplyTracker> {
    const reply = new ReplyTracker();
    await this.db.runExclusive(() =>
      this.db.execProtocolRawStream(message, { onRawData: (data) => reply.push(data) }),
    );
    return reply;
  }

  private armIdleTimer(s: Session): void {
    this.clearIdleTimer();
    const ms = this.opts.idleInTransactionTimeoutMs;
    if (ms <= 0) return;
    this.idleTimer = setTimeout(() => {
      if (this.owner !== s || s.pending.length > 0) return;
      this.fail(s, '25P03', `terminating connection: it held the embedded database idle for over ${ms} ms`);
    }, ms);
    this.idleTimer.unref();
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private report(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.opts.onError?.(error);
  }
}
