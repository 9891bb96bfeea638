import { Inject, Injectable } from '@nestjs/common';
import { unauthenticated } from '../graphql/errors.js';
import { verifyApiKey } from './api-keys.js';
import { GatewayDatabase } from './database.js';

const HOW_TO = 'send "Authorization: Bearer <key>"; create a key with `loupe apikey create`';

/** Checks the bearer key of a request that needs one (mutations and job control). */
@Injectable()
export class ApiKeys {
  constructor(@Inject(GatewayDatabase) private readonly db: GatewayDatabase) {}

  async require(authorization: string | undefined): Promise<{ id: string; name: string }> {
    if (!authorization) throw unauthenticated(`this operation needs an API key: ${HOW_TO}`);
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) throw unauthenticated(`the Authorization header must be "Bearer <key>"`);
    const key = await verifyApiKey(await this.db.sql(), match[1]);
    if (!key) throw unauthenticated(`the API key is not valid (unknown or revoked): ${HOW_TO}`);
    return key;
  }
}
