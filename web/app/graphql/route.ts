import type { NextRequest } from 'next/server';
import { gatewayUrl } from '@/lib/config';

export const dynamic = 'force-dynamic';

/**
 * The browser's GraphQL over HTTP, passed through to the gateway (read at request time, so one build
 * serves any gateway address). Only the body, its type and the API key travel; the gateway's answer and
 * status come back as they are.
 */
export async function POST(request: NextRequest) {
  const headers: Record<string, string> = {
    'content-type': request.headers.get('content-type') ?? 'application/json',
    accept: request.headers.get('accept') ?? 'application/json',
  };
  const authorization = request.headers.get('authorization');
  if (authorization) headers.authorization = authorization;
  // the gateway's per-client limits count the browser, not this server (it trusts loopback proxies)
  const forwarded = request.headers.get('x-forwarded-for');
  if (forwarded) headers['x-forwarded-for'] = forwarded;
  try {
    const answer = await fetch(gatewayUrl(), {
      method: 'POST',
      headers,
      body: await request.text(),
      cache: 'no-store',
    });
    return new Response(answer.body, {
      status: answer.status,
      headers: { 'content-type': answer.headers.get('content-type') ?? 'application/json' },
    });
  } catch {
    // the gateway's address stays on the server
    return Response.json(
      { errors: [{ message: 'the GraphQL gateway is not reachable', extensions: { code: 'UNAVAILABLE' } }] },
      { status: 502 },
    );
  }
}
