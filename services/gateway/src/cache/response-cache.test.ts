import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { limitInFlight } from '../limits/in-flight.js';
import { cacheableOperation, ResponseCache } from './response-cache.js';

const PAGE = 'query ($id: ID!) { unit(id: $id) { id } }';

describe('cacheableOperation', () => {
  it('keeps unit pages only: not mutations, jobs, fragments at the root, or unparsable text', () => {
    expect(cacheableOperation(PAGE, undefined)).toBe(true);
    expect(cacheableOperation('{ units(ids: ["a"]) { id } __typename }', undefined)).toBe(true);
    expect(cacheableOperation('{ jobs { id } }', undefined)).toBe(false);
    expect(cacheableOperation('mutation { explain(unit: "a") { text } }', undefined)).toBe(false);
    expect(cacheableOperation('{ ...F } fragment F on Query { unit(id: "a") { id } }', undefined)).toBe(
      false,
    );
    expect(cacheableOperation('query A { unit(id: "a") { id } } query B { jobs { id } }', 'B')).toBe(false);
    expect(cacheableOperation('query A { unit(id: "a") { id } } query B { jobs { id } }', 'A')).toBe(true);
    expect(cacheableOperation('{ unit(', undefined)).toBe(false);
  });
});

/** An express app answering like Apollo (res.send of the JSON text) and counting what it executed. */
async function server(cache: ResponseCache, answer: (id: string) => string) {
  const app = express();
  let executed = 0;
  app.use(express.json());
  app.use('/graphql', cache.middleware());
  app.use('/graphql', (req, res) => {
    executed++;
    const variables = req.method === 'GET' ? JSON.parse(String(req.query.variables)) : req.body.variables;
    res.type('application/json').send(answer(variables.id));
  });
  const listening = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => listening.once('listening', resolve));
  const url = `http://127.0.0.1:${(listening.address() as AddressInfo).port}/graphql`;
  return { url, executed: () => executed, close: () => new Promise((r) => listening.close(r)) };
}

const post = (url: string, id: string, query = PAGE) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables: { id } }),
  });

let close: (() => Promise<unknown>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

describe('ResponseCache', () => {
  it('sends a kept answer with its ETag without executing, per variables; 304 for GET If-None-Match', async () => {
    const now = 0;
    const cache = new ResponseCache(1 << 20, 1000, 'http://127.0.0.1:1/graphql', () => now);
    const s = await server(cache, (id) => `{"data":{"unit":{"id":"${id}"}}}`);
    close = s.close;
    const first = await post(s.url, 'a');
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^W\/"/);
    expect(await first.text()).toBe('{"data":{"unit":{"id":"a"}}}');
    const second = await post(s.url, 'a');
    expect(second.headers.get('x-loupe-cache')).toBe('hit');
    expect(second.headers.get('etag')).toBe(etag);
    expect(await second.text()).toBe('{"data":{"unit":{"id":"a"}}}');
    expect(s.executed()).toBe(1);
    await (await post(s.url, 'b')).text(); // other variables: another answer
    expect(s.executed()).toBe(2);

    const params = new URLSearchParams({ query: PAGE, variables: JSON.stringify({ id: 'a' }) });
    const get = await fetch(`${s.url}?${params}`, { headers: { 'if-none-match': etag ?? '' } });
    expect(get.status).toBe(304);
    expect(s.executed()).toBe(2);

    cache.clear(); // what a mutation does
    await (await post(s.url, 'a')).text();
    expect(s.executed()).toBe(3);
  });

  it('never keeps an answer with errors, nor one to a query that is not a unit page', async () => {
    const cache = new ResponseCache(1 << 20, 1000, 'http://127.0.0.1:1/graphql');
    const s = await server(cache, () => '{"errors":[{"message":"no"}],"data":null}');
    close = s.close;
    for (let i = 0; i < 2; i++) await (await post(s.url, 'a')).text();
    for (let i = 0; i < 2; i++) await (await post(s.url, 'a', '{ jobs { id } }')).text();
    expect(s.executed()).toBe(4);
  });

  it('refreshes a stale answer in the background, and stops sending it past ten times the age', async () => {
    let now = 0;
    let version = 1;
    let url = '';
    const cache = new ResponseCache(1 << 20, 1000, 'http://127.0.0.1:1/graphql', () => now);
    Object.defineProperty(cache, 'selfUrl', { get: () => url });
    const s = await server(cache, () => `{"data":{"v":${version}}}`);
    url = s.url;
    close = s.close;
    await (await post(s.url, 'a')).text();
    version = 2;
    now = 1500; // stale: the old answer goes out, and a refresh runs
    expect(await (await post(s.url, 'a')).text()).toBe('{"data":{"v":1}}');
    for (let i = 0; i < 50 && s.executed() < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(s.executed()).toBe(2);
    expect(await (await post(s.url, 'a')).text()).toBe('{"data":{"v":2}}');
    version = 3;
    now += 10_001 + 1500; // past ten times the age: executed while the client waits
    expect(await (await post(s.url, 'a')).text()).toBe('{"data":{"v":3}}');
  });
});

describe('limitInFlight', () => {
  it('answers 503 UNAVAILABLE with Retry-After beyond the limit, and serves again once requests finish', async () => {
    const app = express();
    const release: (() => void)[] = [];
    app.use(limitInFlight(2));
    app.use((_req, res) => {
      release.push(() => res.send('{"data":{}}'));
    });
    const listening = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => listening.once('listening', resolve));
    close = () => new Promise((r) => listening.close(r));
    const url = `http://127.0.0.1:${(listening.address() as AddressInfo).port}/`;
    const held = [fetch(url), fetch(url)];
    while (release.length < 2) await new Promise((r) => setTimeout(r, 10));
    const refused = await fetch(url);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect((await refused.json()).errors[0].extensions.code).toBe('UNAVAILABLE');
    for (const r of release.splice(0)) r();
    await Promise.all(held.map(async (r) => (await r).text()));
    const again = fetch(url);
    while (release.length < 1) await new Promise((r) => setTimeout(r, 10));
    release[0]();
    expect((await again).status).toBe(200);
  });
});
