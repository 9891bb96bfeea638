import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { VARIABLES } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/process.js';

// Types come from one source: the .proto files generate services/common/src/proto, and the config
// module is the one list of environment variables. These tests fail when either drifts.
async function readTree(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    files.set(path.relative(dir, full), await fs.readFile(full, 'utf8'));
  }
  return files;
}

describe('contracts stay in agreement with their single source', () => {
  it('generated gRPC types match proto/', async () => {
    const fresh = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-proto-'));
    execFileSync(process.execPath, [path.join(REPO_ROOT, 'proto/generate.mjs'), fresh]);
    const committed = await readTree(path.join(REPO_ROOT, 'services/common/src/proto'));
    const generated = await readTree(fresh);
    expect([...committed.keys()].sort(), 'run `node proto/generate.mjs`').toEqual(
      [...generated.keys()].sort(),
    );
    for (const [file, text] of generated)
      expect(committed.get(file), `${file} is stale: run \`node proto/generate.mjs\``).toBe(text);
  });

  it("the README's configuration table lists exactly the variables the code reads", async () => {
    const readme = await fs.readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('## Configuration'),
      readme.indexOf('\n## ', readme.indexOf('## Configuration') + 5),
    );
    const rows = [...section.matchAll(/^\|\s*`([A-Z_]+)`\s*\|([^|\n]+)\|/gm)].map((m) => [m[1], m[2].trim()]);
    const expected = Object.values(VARIABLES).map((v) => [
      v.name,
      v.default === undefined ? '(unset)' : `\`${v.default}\``,
    ]);
    expect(rows).toEqual(expected);
  });

  it('no module but the config module reads process.env', async () => {
    const offenders: string[] = [];
    for (const dir of ['services']) {
      for (const entry of await fs.readdir(path.join(REPO_ROOT, dir), {
        recursive: true,
        withFileTypes: true,
      })) {
        const full = path.join(entry.parentPath, entry.name);
        if (
          !entry.isFile() ||
          !/\.ts$/.test(entry.name) ||
          full.includes('node_modules') ||
          full.includes('/dist/')
        )
          continue;
        if (full.endsWith('common/src/config.ts') || entry.name.endsWith('.test.ts')) continue;
        if ((await fs.readFile(full, 'utf8')).includes('process.env'))
          offenders.push(path.relative(REPO_ROOT, full));
      }
    }
    expect(offenders).toEqual([]);
  });
});
