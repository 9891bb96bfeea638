/**
 * Where the server-rendered pages reach the GraphQL gateway. The web app is a separate Next.js process;
 * `loupe serve` passes it the same environment as the services, so LOUPE_GATEWAY_PORT is enough on one
 * machine and LOUPE_GATEWAY_URL points elsewhere (another container, another host).
 */
export function gatewayUrl(): string {
  const explicit = process.env.LOUPE_GATEWAY_URL;
  if (explicit) return explicit;
  return `http://127.0.0.1:${process.env.LOUPE_GATEWAY_PORT || '4000'}/graphql`;
}
