import { type NextRequest, NextResponse } from 'next/server';
import { unitPath } from '@/lib/units';

/** The home page's "open neuron" form (works without JavaScript): redirect to the unit's page. */
export function GET(request: NextRequest) {
  const params = request.nextUrl.searchParams;
  const id = [params.get('model') ?? '', params.get('hook') ?? '', params.get('index') ?? ''].join('/');
  return NextResponse.redirect(new URL(unitPath(id), request.nextUrl.origin), 303);
}
