import type { LoupeConfig } from '@loupe/common';
import { type CaptureApi, captureServiceClient, fromServiceError } from '@loupe/common/grpc';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { wireFloats } from '../eval/capture-splice-model.js';
import { CONFIG } from './tokens.js';

/** The capture service this one asks for activations (config.captureAddress); connects lazily. */
@Injectable()
export class CaptureClient implements OnApplicationShutdown {
  readonly api: CaptureApi;

  constructor(@Inject(CONFIG) config: LoupeConfig) {
    this.api = captureServiceClient(config.captureAddress);
  }

  /** Token ids, display strings and the activations [tokens, width] of `text` at `hook`. */
  async activations(
    model: string,
    text: string,
    hook: string,
  ): Promise<{ ids: number[]; tokens: string[]; values: Float32Array }> {
    const out = await this.api.Activations({ model, text, hooks: [hook] }).catch((e) => {
      throw fromServiceError(e, 'capture service');
    });
    return { ids: out.ids, tokens: out.tokens, values: wireFloats(out.activations[hook]) };
  }

  async tokenize(model: string, text: string): Promise<number[]> {
    const out = await this.api.Tokenize({ model, text }).catch((e) => {
      throw fromServiceError(e, 'capture service');
    });
    return out.ids;
  }

  onApplicationShutdown(): void {
    this.api.close();
  }
}
