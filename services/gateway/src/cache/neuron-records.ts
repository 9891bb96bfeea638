import { approximateBytes, ByteLru } from '@loupe/common';
import type { CaptureApi, NeuronRecordResponse__Output } from '@loupe/common/grpc';
import { callCapture } from '../capture/capture.js';

/**
 * Neuron records kept across requests. A record belongs to a finished capture job and never changes,
 * so the gateway keeps the last one it got per unit and asks the capture service only whether that
 * job is still the hook's newest (known_job_id): the usual answer is a few bytes instead of ~100 KB of
 * windows, and nothing is ever served from a job that a newer one has replaced.
 */
export class NeuronRecordCache {
  private readonly records: ByteLru<string, NeuronRecordResponse__Output>;

  constructor(maxBytes: number) {
    this.records = new ByteLru(maxBytes);
  }

  async load(
    capture: CaptureApi,
    id: string,
    ref: { model: string; hook: string; index: number },
  ): Promise<NeuronRecordResponse__Output> {
    const known = this.records.get(id);
    const answer = await callCapture(() =>
      capture.NeuronRecord({
        model: ref.model,
        hook: ref.hook,
        neuron: ref.index,
        knownJobId: known?.jobId ?? '',
      }),
    );
    if (answer.unchanged && known && known.jobId === answer.jobId) return known;
    if (answer.unchanged) {
      // the entry was evicted while the call was in flight: ask for the whole record
      return this.load(capture, id, ref);
    }
    this.records.set(id, answer, approximateBytes(answer));
    return answer;
  }

  /** Records held and their approximate bytes (for tests and metrics). */
  stats(): { records: number; bytes: number; hits: number; misses: number } {
    return {
      records: this.records.size,
      bytes: this.records.bytes,
      hits: this.records.hits,
      misses: this.records.misses,
    };
  }
}
