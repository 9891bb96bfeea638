import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseModel, hubReachable } from './model.js';

// Which model `loupe serve` serves, against a real local HTTP server (online) and a closed port (offline).
let dataDir: string;
let hub: http.Server;
let online: string;
let offline: string;

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'loupe-model-choice-'));
  hub = http.createServer((_, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => hub.listen(0, '127.0.0.1', resolve));
  online = `http://127.0.0.1:${(hub.address() as net.AddressInfo).port}`;
  offline = `http://127.0.0.1:${await closedPort()}`;
});

afterAll(async () => {
  await new Promise((resolve) => hub.close(resolve));
  await fs.rm(dataDir, { recursive: true, force: true });
});

async function addModel(name: string): Promise<void> {
  await fs.mkdir(path.join(dataDir, 'models', name), { recursive: true });
  await fs.writeFile(path.join(dataDir, 'models', name, 'manifest.json'), '{}');
}

describe('model choice', () => {
  it('counts any HTTP answer as online and a refused connection as offline', async () => {
    expect(await hubReachable(online)).toBe(true);
    expect(await hubReachable(offline)).toBe(false);
  });

  it('pulls the configured model online, makes the fixture offline, and uses what is there', async () => {
    expect(await chooseModel({ dataDir, model: 'gpt2', hfEndpoint: online })).toMatchObject({
      name: 'gpt2',
      offline: false,
      fetch: 'pull',
    });
    expect(await chooseModel({ dataDir, model: 'gpt2', hfEndpoint: offline })).toMatchObject({
      name: 'loupe-tiny',
      offline: true,
      fetch: 'fixture',
    });
    await addModel('loupe-tiny');
    expect(await chooseModel({ dataDir, model: 'gpt2', hfEndpoint: offline })).toMatchObject({
      name: 'loupe-tiny',
      offline: true,
      fetch: 'none',
    });
    // the offline model never stands in for gpt2 once the hub answers
    expect((await chooseModel({ dataDir, model: 'gpt2', hfEndpoint: online })).fetch).toBe('pull');
    await addModel('gpt2');
    expect(await chooseModel({ dataDir, model: 'gpt2', hfEndpoint: offline })).toMatchObject({
      name: 'gpt2',
      offline: false,
      fetch: 'none',
    });
    // a path is never pulled
    const missing = path.join(dataDir, 'elsewhere');
    expect(await chooseModel({ dataDir, model: missing, hfEndpoint: online })).toMatchObject({
      name: missing,
      fetch: 'none',
    });
  });
});
