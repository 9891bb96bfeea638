import { startSaeService } from './service/main.js';

await startSaeService();
