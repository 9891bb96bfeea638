import { startExplainerService } from './service/main.js';

await startExplainerService();
