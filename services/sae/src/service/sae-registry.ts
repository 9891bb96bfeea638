import { stat } from 'node:fs/promises';
import path from 'node:path';
import { type Logger, type LoupeConfig, UserInputError } from '@loupe/common';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Sae } from '../format/sae-model.js';
import { readSaeLens, WEIGHTS_FILE } from '../format/saelens.js';
import { SaeEncoder } from '../infer/sae-encoder.js';
import { getSae, listSaes, type SaeRow, saeIds } from '../store/sae-store.js';
import { SaeDatabase } from './database.js';
import { CONFIG, LOGGER } from './tokens.js';

export interface LoadedSae {
  record: SaeRow;
  sae: Sae;
  /** the ONNX Runtime encoder, opened on first use */
  encoder(): Promise<SaeEncoder>;
  /** releases the encoder session, if one was opened */
  close(): Promise<void>;
}

const MAX_CACHED = 8;

/**
 * SAEs of the library, read from their folders on first use and kept (with their encoder sessions)
 * for the next request. A folder rewritten by a re-import is read again.
 */
@Injectable()
export class SaeRegistry implements OnApplicationShutdown {
  private readonly cache = new Map<string, { version: string; loaded: Promise<LoadedSae> }>();

  constructor(
    private readonly database: SaeDatabase,
    @Inject(CONFIG) private readonly config: LoupeConfig,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  async record(id: string): Promise<SaeRow> {
    if (id === '') throw new UserInputError('sae_id is empty: name an SAE (ListSaes shows them)');
    const sql = await this.database.sql();
    const row = await getSae(sql, id);
    if (!row) {
      const known = await saeIds(sql, 20);
      throw new UserInputError(
        `unknown SAE "${id}"; ${known.length ? `known: ${known.join(', ')}` : 'the library is empty (import one with `loupe sae import`)'}`,
        'NOT_FOUND',
      );
    }
    return row;
  }

  async list(filter: { model: string; hook: string }): Promise<SaeRow[]> {
    return listSaes(await this.database.sql(), filter);
  }

  async get(id: string): Promise<LoadedSae> {
    const record = await this.record(id);
    const weights = path.join(record.weightsPath, WEIGHTS_FILE);
    const info = await stat(weights).catch(() => {
      throw new UserInputError(
        `SAE "${id}" is registered but its weights are missing (${weights}); import it again`,
        'NOT_FOUND',
      );
    });
    const version = `${record.weightsPath}:${info.mtimeMs}:${info.size}`;
    const cached = this.cache.get(id);
    if (cached?.version === version) return cached.loaded;
    if (cached) void this.release(cached.loaded);
    const loaded = this.load(record);
    loaded.catch(() => this.cache.delete(id));
    this.cache.delete(id);
    this.cache.set(id, { version, loaded });
    while (this.cache.size > MAX_CACHED) {
      const [oldest] = this.cache.keys();
      void this.release(this.cache.get(oldest)!.loaded);
      this.cache.delete(oldest);
    }
    return loaded;
  }

  private async load(record: SaeRow): Promise<LoadedSae> {
    const sae = await readSaeLens(record.weightsPath);
    // the database's model and hook are what the library knows the SAE by
    sae.config.hookName ??= record.hook;
    sae.config.modelName ??= record.model;
    let encoder: Promise<SaeEncoder> | undefined;
    this.log.info({ sae: record.id, dIn: record.dIn, dSae: record.dSae }, 'SAE loaded');
    return {
      record,
      sae,
      encoder: () => {
        encoder ??= SaeEncoder.open(sae, {
          device: this.config.device,
          intraOpThreads: this.config.intraOpThreads,
          owner: 'sae',
          log: this.log,
        });
        encoder.catch(() => {
          encoder = undefined;
        });
        return encoder;
      },
      close: async () => {
        await (await encoder?.catch(() => null))?.close();
      },
    };
  }

  private async release(loaded: Promise<LoadedSae>): Promise<void> {
    await (await loaded.catch(() => null))?.close();
  }

  async onApplicationShutdown(): Promise<void> {
    for (const { loaded } of this.cache.values()) await this.release(loaded);
  }
}
