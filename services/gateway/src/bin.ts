// The gateway as a process (`node services/gateway/dist/bin.js`); `loupe serve` runs it in a child.
import { preferProductionMode } from '@loupe/common';

preferProductionMode();
// imported after, so graphql-js sees NODE_ENV when it loads
const { startGateway } = await import('./main.js');

await startGateway();
