import { type NextRequest, NextResponse } from 'next/server';
import { unitPath } from '@/lib/units';

/** The SAE page's "open feature" form (works without JavaScript): redirect to the feature's page. */
export async function GET(request: NextRequest, context: { params: Promise<{ id: string }> }) {
  const id = decodeURIComponent((await context.params).id);
  const params = request.nextUrl.searchParams;
  const target = [params.get('model') ?? '', id, params.get('index') ?? ''].join('/');
  return NextResponse.redirect(new URL(unitPath(target), request.nextUrl.origin), 303);
}
