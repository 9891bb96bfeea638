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
        if (
          full.endsWith('common/src/config.ts') ||
          full.includes('common/src/testing/') ||
          entry.name.endsWith('.test.ts')
        )
          continue;
        if ((await fs.readFile(full, 'utf8')).includes('process.env'))
          offenders.push(path.relative(REPO_ROOT, full));
      }
    }
    expect(offenders).toEqual([]);
  });

  it('no service imports another, and libraries import only the libraries below them', async () => {
    const offenders = await forbiddenImports();
    expect(offenders, offenders.join('\n')).toEqual([]);
  });

  it('the import rule names the file, line and package of a broken import', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-imports-'));
    for (const pkg of [...Object.keys(LIBRARIES), ...SERVICES]) {
      await fs.mkdir(path.join(root, pkg, 'src'), { recursive: true });
      await fs.writeFile(path.join(root, pkg, 'package.json'), '{}');
    }
    await fs.writeFile(path.join(root, 'sae/package.json'), '{"dependencies":{"@loupe/capture":"0.1.0"}}');
    await fs.writeFile(
      path.join(root, 'sae/src/a.ts'),
      "import { x } from '@loupe/model';\nimport { y } from '@loupe/capture';\n",
    );
    await fs.writeFile(
      path.join(root, 'model/src/b.ts'),
      "const m = await import('@loupe/records/thing');\n",
    );
    await fs.writeFile(path.join(root, 'sae/src/a.test.ts'), "import { y } from '@loupe/capture';\n");
    const found = await forbiddenImports(root);
    expect(found).toHaveLength(3);
    expect(found).toContain('services/sae/package.json depends on @loupe/capture');
    expect(found.some((f) => f.endsWith('sae/src/a.ts:2 imports @loupe/capture'))).toBe(true);
    expect(found.some((f) => f.endsWith('model/src/b.ts:1 imports @loupe/records'))).toBe(true);
    await fs.rm(root, { recursive: true, force: true });
  });
});

// Which @loupe packages each package may import. Services talk to each other over gRPC (proto/), so a
// service may import libraries only; libraries are layered; the CLI (and tests) may import anything.
const LIBRARIES: Record<string, string[]> = {
  common: [],
  model: ['common'],
  records: ['common', 'model'],
  shop: ['common'],
};
const SERVICES = ['capture', 'sae', 'explainer', 'gateway'];

async function forbiddenImports(root = path.join(REPO_ROOT, 'services')): Promise<string[]> {
  const offenders: string[] = [];
  for (const pkg of [...Object.keys(LIBRARIES), ...SERVICES]) {
    const allowed = new Set(LIBRARIES[pkg] ?? Object.keys(LIBRARIES));
    allowed.add(pkg);
    const manifest = JSON.parse(await fs.readFile(path.join(root, pkg, 'package.json'), 'utf8'));
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      const name = dep.match(/^@loupe\/([^/]+)$/)?.[1];
      if (name && !allowed.has(name)) offenders.push(`services/${pkg}/package.json depends on ${dep}`);
    }
    const src = path.join(root, pkg, 'src');
    for (const entry of await fs.readdir(src, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts')) continue;
      const full = path.join(entry.parentPath, entry.name);
      const text = await fs.readFile(full, 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]@loupe\/([^/'"]+)[^'"]*['"]/g)) {
        if (allowed.has(m[1])) continue;
        const line = text.slice(0, m.index).split('\n').length;
        offenders.push(`services/${path.relative(root, full)}:${line} imports @loupe/${m[1]}`);
      }
    }
  }
  return offenders;
}
