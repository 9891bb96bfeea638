import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { VARIABLES } from '@loupe/common';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../support/process.js';

// The deployment files agree with each other and with the code: every compose service has a
// Kubernetes Deployment (and back), every variable they set is one config.ts reads, every image
// target exists in infra/Dockerfile, and every Deployment has probes and resources.

// biome-ignore lint/suspicious/noExplicitAny: manifests are checked field by field
type Json = any;

const VARIABLE_NAMES = new Set(Object.values(VARIABLES).map((v) => v.name));
/** compose-only: the Postgres image's own settings */
const POSTGRES_VARIABLES = new Set(['POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB']);
/** one Deployment per service; the gpu variants and the one-shot model pull map onto it or none */
const COMPOSE_TO_K8S: Record<string, string | null> = {
  postgres: null,
  models: null,
  'capture-gpu': 'capture',
  'sae-gpu': 'sae',
};

async function compose(): Promise<Json> {
  return parse(await fs.readFile(path.join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true });
}

async function manifests(): Promise<Json[]> {
  const dir = path.join(REPO_ROOT, 'infra/k8s');
  const docs: Json[] = [];
  for (const file of (await fs.readdir(dir)).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(await fs.readFile(path.join(dir, file), 'utf8'))) {
      expect(doc.errors, file).toEqual([]);
      docs.push({ ...doc.toJS(), file });
    }
  }
  return docs;
}

const hasDockerCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;

describe('deployment files', () => {
  it.skipIf(!hasDockerCompose)(
    'docker-compose.yml is valid for both profiles (docker-compose config -q)',
    () => {
      for (const profiles of ['cpu', 'gpu']) {
        execFileSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], {
          cwd: REPO_ROOT,
          env: { ...process.env, COMPOSE_PROFILES: profiles },
        });
      }
    },
  );
  if (!hasDockerCompose)
    it.skip('docker-compose is not installed (apt-get install docker-compose; .ci/run does): compose not validated', () => {});

  it('compose services and Kubernetes Deployments name the same services', async () => {
    const services = Object.keys((await compose()).services);
    const fromCompose = new Set(
      services.map((s) => (s in COMPOSE_TO_K8S ? COMPOSE_TO_K8S[s] : s)).filter((s): s is string => !!s),
    );
    const deployments = (await manifests())
      .filter((d) => d.kind === 'Deployment')
      .map((d) => d.metadata.name);
    expect([...fromCompose].sort()).toEqual([...deployments].sort());
    expect(deployments.sort()).toEqual(['capture', 'explainer', 'gateway', 'sae', 'web']);
  });

  it('every variable compose and Kubernetes set is one config.ts reads', async () => {
    const set: string[] = [];
    for (const service of Object.values((await compose()).services) as Json[])
      set.push(...Object.keys(service.environment ?? {}));
    for (const doc of await manifests()) {
      if (doc.kind === 'ConfigMap') set.push(...Object.keys(doc.data));
      if (doc.kind === 'Secret') set.push(...Object.keys(doc.stringData));
      for (const c of doc.spec?.template?.spec?.containers ?? [])
        set.push(...(c.env ?? []).map((e: Json) => e.name));
    }
    const unknown = set.filter((name) => !VARIABLE_NAMES.has(name) && !POSTGRES_VARIABLES.has(name));
    expect(unknown).toEqual([]);
    expect(set).toContain('LOUPE_METRICS_PORT');
  });

  it('every image target compose builds exists in infra/Dockerfile', async () => {
    const dockerfile = await fs.readFile(path.join(REPO_ROOT, 'infra/Dockerfile'), 'utf8');
    const stages = new Set([...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]));
    for (const [name, service] of Object.entries((await compose()).services) as [string, Json][]) {
      if (!service.build) continue;
      expect(service.build.dockerfile, name).toBe('infra/Dockerfile');
      expect(stages, `${name} builds target ${service.build.target}`).toContain(service.build.target);
    }
    expect(dockerfile).toMatch(/ONNXRUNTIME_NODE_INSTALL=skip/);
    expect(dockerfile).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
    // no runtime stage runs as root
    expect(dockerfile.match(/^USER 1000:1000$/gm)?.length).toBe(3);
  });

  it('every Deployment has readiness and liveness probes and resource requests and limits', async () => {
    const docs = await manifests();
    for (const d of docs.filter((doc) => doc.kind === 'Deployment')) {
      const pod = d.spec.template.spec;
      expect(pod.securityContext?.runAsNonRoot, d.metadata.name).toBe(true);
      for (const c of pod.containers) {
        const where = `${d.file} ${c.name}`;
        expect(c.readinessProbe, where).toBeDefined();
        expect(c.livenessProbe, where).toBeDefined();
        for (const key of ['cpu', 'memory']) {
          expect(c.resources?.requests?.[key], `${where} requests.${key}`).toBeDefined();
          expect(c.resources?.limits?.[key], `${where} limits.${key}`).toBeDefined();
        }
        // the gRPC services are probed with the standard gRPC health service
        const grpcPort = c.ports.find((p: Json) => p.name === 'grpc')?.containerPort;
        if (grpcPort) expect(c.readinessProbe.grpc, where).toEqual({ port: grpcPort });
        else expect(c.readinessProbe.httpGet, where).toBeDefined();
      }
      const service = docs.find((doc) => doc.kind === 'Service' && doc.metadata.name === d.metadata.name);
      expect(service, `Service for ${d.metadata.name}`).toBeDefined();
    }
  });
});
