import type { NextRequest } from 'next/server';
import { gatewayUrl } from '@/lib/config';

export const dynamic = 'force-dynamic';

/** What travels to the gateway: the body's type, the API key, the browser's address, a cached ETag. */
function forwardedHeaders(request: NextRequest): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': request.headers.get('content-type') ?? 'application/json',
    accept: request.headers.get('accept') ?? 'application/json',
  };
  for (const name of ['authorization', 'if-none-match']) {
    const value = request.headers.get(name);
    if (value) headers[name] = value;
  }
  // the gateway's per-client limits count the browser, not this server (it trusts loopback proxies)
  const forwarded = request.headers.get('x-forwarded-for');
  if (forwarded) headers['x-forwarded-for'] = forwarded;
  return headers;
}

/**
 * The browser's GraphQL over HTTP, passed through to the gateway (read at request time, so one build
 * serves any gateway address). Only the body, its type, the API key and If-None-Match travel; the
 * gateway's answer, status and ETag come back as they are.
 */
export async function POST(request: NextRequest) {
  return pass(gatewayUrl(), {
    method: 'POST',
    headers: forwardedHeaders(request),
    body: await request.text(),
  });
}

/**
 * Hashed queries (automatic persisted queries) come as GET, so the browser's HTTP cache revalidates
 * them with the gateway's ETag. Apollo Server takes a GET only with a header no cross-site form sends.
 */
export async function GET(request: NextRequest) {
  const headers = { ...forwardedHeaders(request), 'apollo-require-preflight': 'true' };
  return pass(`${gatewayUrl()}${request.nextUrl.search}`, { method: 'GET', headers });
}

async function pass(url: string, init: RequestInit): Promise<Response> {
  try {
    const answer = await fetch(url, { ...init, cache: 'no-store' });
    const headers: Record<string, string> = {
      'content-type': answer.headers.get('content-type') ?? 'application/json',
    };
    for (const name of ['etag', 'cache-control']) {
      const value = answer.headers.get(name);
      if (value) headers[name] = value;
    }
    return new Response(answer.status === 304 ? null : answer.body, { status: answer.status, headers });
  } catch {
    // the gateway's address stays on the server
    return Response.json(
      { errors: [{ message: 'the GraphQL gateway is not reachable', extensions: { code: 'UNAVAILABLE' } }] },
      { status: 502 },
    );
  }
}
