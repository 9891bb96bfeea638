import { startCaptureService } from './service/main.js';

await startCaptureService();
