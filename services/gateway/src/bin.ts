// The gateway as a process (`node services/gateway/dist/bin.js`); `loupe serve` calls startGateway().
import { startGateway } from './main.js';

await startGateway();
