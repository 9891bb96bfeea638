import { parseHook, UserInputError } from '@loupe/common';
import type { ListNeuronsRequest__Output, ListNeuronsResponse } from '@loupe/common/grpc';
import { Injectable } from '@nestjs/common';
import { CaptureDatabase } from './database.js';
import { ModelRegistry } from './model-registry.js';

/** ListNeurons' orders: SQL of each (largest first; the neuron breaks ties so pages are stable). */
const ORDERS: Record<string, string> = {
  neuron: 'neuron',
  max_activation: 'max_activation DESC, neuron',
  frequency: 'fraction_nonzero DESC, neuron',
};

/**
 * The statistics of every neuron of a hook, from the newest finished capture job that recorded the
 * hook (the job NeuronRecord reads too once it is the newest), ordered and paged for browsing.
 */
@Injectable()
export class NeuronList {
  constructor(
    private readonly database: CaptureDatabase,
    private readonly models: ModelRegistry,
  ) {}

  async list(request: ListNeuronsRequest__Output): Promise<ListNeuronsResponse> {
    const { runner } = await this.models.get(request.model);
    const ref = parseHook(request.hook, runner.manifest.dims.nLayer);
    if (ref.kind !== 'block' || ref.hook !== 'mlp.hook_post')
      throw new UserInputError(`neurons are listed for blocks.{L}.mlp.hook_post only, not "${request.hook}"`);
    const orderBy = request.orderBy || 'neuron';
    const order = ORDERS[orderBy];
    if (!order)
      throw new UserInputError(`order_by "${orderBy}": expected one of ${Object.keys(ORDERS).join(', ')}`);
    if (request.offset < 0 || request.limit < 0)
      throw new UserInputError(`offset ${request.offset} and limit ${request.limit} must not be negative`);
    const sql = await this.database.sql();
    const [job] = await sql`
      SELECT j.id, (SELECT count(*)::int FROM neuron_records r WHERE r.job_id = j.id AND r.hook = ${request.hook}) AS total
      FROM capture_jobs j
      WHERE j.status = 'done' AND EXISTS (
        SELECT 1 FROM neuron_records r WHERE r.job_id = j.id AND r.model = ${runner.name} AND r.hook = ${request.hook})
      ORDER BY j.finished_at DESC LIMIT 1`;
    if (!job)
      throw new UserInputError(
        `no records for ${runner.name}/${request.hook} yet: run a capture job on that hook`,
        'NOT_FOUND',
      );
    const rows = await sql`
      SELECT neuron, max_activation, min_activation, mean_activation, fraction_nonzero, tokens, histogram
      FROM neuron_records WHERE job_id = ${job.id} AND hook = ${request.hook}
      ORDER BY ${sql.unsafe(order)}
      OFFSET ${request.offset} ${request.limit > 0 ? sql`LIMIT ${request.limit}` : sql``}`;
    return {
      model: runner.name,
      hook: request.hook,
      jobId: job.id,
      total: job.total,
      neurons: rows.map((r) => ({
        neuron: r.neuron,
        maxActivation: r.max_activation,
        minActivation: r.min_activation,
        meanActivation: r.mean_activation,
        fractionNonzero: r.fraction_nonzero,
        tokens: Number(r.tokens),
        histogram: r.histogram,
      })),
    };
  }
}
