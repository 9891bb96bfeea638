import fs from 'node:fs/promises';
import path from 'node:path';
import { type Logger, type LoupeConfig, modelsDir, UserInputError } from '@loupe/common';
import { recordTokens } from '@loupe/common/metrics';
import type { ForwardRequest, ForwardResult } from '@loupe/model';
import { DynamicBatcher, Gpt2Runner } from '@loupe/model';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { CONFIG, LOGGER } from './tokens.js';

export interface ServedModel {
  runner: Gpt2Runner;
  forward(request: ForwardRequest): Promise<ForwardResult>;
}

const MODEL_NAME = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * The models this process serves, loaded on first use from $LOUPE_DATA_DIR/models/<name>, each with
 * its own batcher so concurrent requests for one model share forward passes.
 */
@Injectable()
export class ModelRegistry implements OnApplicationShutdown {
  private readonly models = new Map<string, Promise<ServedModel>>();

  constructor(
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  get(name: string): Promise<ServedModel> {
    const key = name === '' ? this.config.model : name;
    let served = this.models.get(key);
    if (!served) {
      served = this.load(key);
      served.catch(() => this.models.delete(key));
      this.models.set(key, served);
    }
    return served;
  }

  private async load(name: string): Promise<ServedModel> {
    const dir = await this.resolve(name);
    const runner = await Gpt2Runner.load(
      dir,
      { device: this.config.device, intraOpThreads: this.config.intraOpThreads, owner: 'capture' },
      this.log,
    );
    const batcher = new DynamicBatcher(
      (requests) => runner.forward(requests),
      (request) => runner.validate(request),
      { maxBatchTokens: this.config.maxBatchTokens, windowMs: this.config.batchWindowMs },
    );
    this.log.info({ model: runner.name, dir }, 'model loaded');
    const forward = async (request: ForwardRequest) => {
      const result = await batcher.submit(request);
      recordTokens('capture', runner.name, request.ids.length);
      return result;
    };
    return { runner, forward };
  }

  /** A bare name is a folder under the models directory; the default model may also be a path. */
  private async resolve(name: string): Promise<string> {
    const root = modelsDir(this.config);
    const isDefaultPath = name === this.config.model && name.includes('/');
    if (!isDefaultPath && !MODEL_NAME.test(name)) {
      throw new UserInputError(
        `unknown model "${name}": model names use letters, digits, ".", "_" and "-"`,
        'UNKNOWN_MODEL',
      );
    }
    const dir = isDefaultPath ? path.resolve(name) : path.join(root, name);
    try {
      await fs.access(path.join(dir, 'manifest.json'));
    } catch {
      const available = await fs.readdir(root).catch(() => [] as string[]);
      throw new UserInputError(
        `unknown model "${name}"; available: ${available.length ? available.join(', ') : `none (no models under ${root})`}`,
        'UNKNOWN_MODEL',
      );
    }
    return dir;
  }

  async onApplicationShutdown(): Promise<void> {
    for (const served of this.models.values()) await (await served.catch(() => null))?.runner.close();
  }
}
