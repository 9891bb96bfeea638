/**
 * Where the server-rendered pages reach the GraphQL gateway. The web app is a separate Next.js process;
 * `loupe serve` passes it the same environment as the services, so LOUPE_GATEWAY_PORT is enough on one
 * machine and LOUPE_GATEWAY_URL points elsewhere (another container, another host). This is the only
 * module of the web app that reads the environment.
 */
export function gatewayUrl(): string {
  const explicit = process.env.LOUPE_GATEWAY_URL;
  if (explicit) return explicit;
  return `http://127.0.0.1:${process.env.LOUPE_GATEWAY_PORT || '4000'}/graphql`;
}

/**
 * The gateway's graphql-ws endpoint (same path as HTTP) for the browser's job-progress subscriptions.
 * HTTP from the browser goes through this app's /graphql proxy; websockets go to the gateway directly,
 * so the page hands this URL down from the server.
 */
export function gatewayWsUrl(): string {
  return gatewayUrl().replace(/^http/, 'ws');
}
