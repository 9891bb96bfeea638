import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileWriterThread } from './file-writer-thread.js';

let dir: string;
let writer: FileWriterThread;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-writer-'));
  writer = FileWriterThread.start();
});
afterAll(async () => {
  await writer.close();
  await fs.rm(dir, { recursive: true, force: true });
});

/** Deterministic bytes that differ at every offset a misplaced block would land on. */
function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + seed + (i >> 12)) & 0xff);
}

function concat(views: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(views.reduce((n, v) => n + v.byteLength, 0));
  let at = 0;
  for (const v of views) {
    out.set(v, at);
    at += v.byteLength;
  }
  return out;
}

async function expectFile(file: string, views: Uint8Array[]): Promise<void> {
  const got = new Uint8Array(await fs.readFile(file));
  const want = concat(views);
  expect(got.byteLength).toBe(want.byteLength);
  expect(Buffer.compare(got, want)).toBe(0);
  expect(existsSync(`${file}.tmp-${process.pid}`)).toBe(false);
}

describe('FileWriterThread', () => {
  it('writes views back to back for sizes around the 4 KiB block and the 32 MiB stage', async () => {
    const sizes = [0, 1, 4095, 4096, 4097, 32 * 1024 * 1024 + 5];
    for (const [i, size] of sizes.entries()) {
      const file = path.join(dir, `size-${size}.bin`);
      const views = [pattern(7, i), pattern(size, i + 1), pattern(3, i + 2)];
      await writer.write(file, views);
      await expectFile(file, views);
    }
  });

  it('writes an empty file', async () => {
    const file = path.join(dir, 'empty.bin');
    await writer.write(file, []);
    await expectFile(file, []);
  });

  it('takes views into shared buffers at their offsets, and hands over transferred buffers', async () => {
    const shared = pattern(10_000, 9);
    const views = [shared.subarray(5000, 9000), shared.subarray(10, 20), shared.subarray(0, 4096)];
    const want = views.map((v) => v.slice());
    const file = path.join(dir, 'views.bin');
    await writer.write(file, views, [shared.buffer as ArrayBuffer]);
    await expectFile(file, want);
    expect(shared.byteLength).toBe(0); // transferred, not copied
  });

  it('replaces an existing file whole', async () => {
    const file = path.join(dir, 'replace.bin');
    await writer.write(file, [pattern(100_000, 1)]);
    await writer.write(file, [pattern(10, 2)]);
    await expectFile(file, [pattern(10, 2)]);
  });

  it('writes on a file system that may refuse O_DIRECT (tmpfs before Linux 6.6)', async () => {
    if (!existsSync('/dev/shm')) return;
    const shm = await fs.mkdtemp('/dev/shm/loupe-writer-');
    try {
      const file = path.join(shm, 'tmpfs.bin');
      const views = [pattern(12_345, 3)];
      await writer.write(file, views);
      await expectFile(file, views);
    } finally {
      await fs.rm(shm, { recursive: true, force: true });
    }
  });

  it('reports a failed write with its reason and keeps working', async () => {
    const file = path.join(dir, 'no-such-folder', 'x.bin');
    await expect(writer.write(file, [pattern(10, 0)])).rejects.toMatchObject({
      code: 'ENOENT',
      message: expect.stringContaining('no-such-folder'),
    });
    const after = path.join(dir, 'after.bin');
    await writer.write(after, [pattern(10, 0)]);
    await expectFile(after, [pattern(10, 0)]);
  });

  it('refuses writes once closed', async () => {
    const closed = FileWriterThread.start();
    await closed.close();
    await expect(closed.write(path.join(dir, 'late.bin'), [pattern(1, 0)])).rejects.toThrow(/closed/);
  });
});
