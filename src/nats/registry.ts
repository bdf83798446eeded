import type { KV } from '@nats-io/kv';
import type { ModelRegistry, ProductionPointer, RollbackRequest } from '../actors/ports.ts';
import type { KvWrite } from './js-writer.ts';
import { entryText, isoTime, isWrongRevision } from './kv-util.ts';
import { isTransient } from './intake.ts';
import { WardenError } from '../domain/errors.ts';
import { rollbackOver } from '../domain/registry-pointer.ts';

/**
 * The value under `<prefix>_registry.<model_id>`: the production pointer a serving system watches.
 * `rollback_id` names the rollback that set it (null after a promotion); it makes a replayed rollback a
 * no-op.
 */
export interface RegistryEntry {
  model_id: string;
  version: string;
  /** ISO 8601. */
  since: string;
  reason: string;
  rollback_id: string | null;
}

const MAX_ATTEMPTS = 20;
const WRITTEN_MEMORY = 100_000;
/** A read that times out is tried this many times (with a growing wait) before it fails. */
const READ_ATTEMPTS = 5;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the registry's writes wait for: this instance holding the model's lease, the connection open. */
export interface RegistryFence {
  whenValid(modelId: string, timeoutMs: number): Promise<boolean>;
  /** This instance holds the model's lease (perhaps not renewed recently enough to act). */
  holds(modelId: string): boolean;
  closed(): boolean;
}

/**
 * A write waits this many seconds for the model's lease (a freeze, a late renewal) before it gives up, as
 * retryable. With input partitions a model whose partition this instance no longer holds has no lease here
 * at all: the write gives up at once (the partition's new holder brings the pointer in line on taking it).
 */
const NOT_HOLDER_WAITS = 10;

/** The built-in model registry in NATS KV; rollbacks are revision-checked and idempotent by rollback id. */
export class KvRegistry implements ModelRegistry {
  /**
   * The pointer as this instance last wrote or read it, with its revision: a rollback of that version writes
   * at once, revision-checked (one round trip instead of a read and a write); any other case, or a revision
   * that moved on meanwhile (the write is refused), reads the pointer first.
   */
  private readonly written = new Map<string, { revision: number; entry: RegistryEntry }>();

  constructor(
    private readonly kv: KV,
    private readonly onTransientFailure?: (what: string, error: unknown) => void,
    /** Writes only while this holds (the instance that takes the inputs is the single writer). */
    private readonly fence?: RegistryFence,
    /** The pointers' revision-checked writes (NATS mode: kvWrites); `kv.update` and `kv.create` if absent. */
    private readonly kvWrite?: KvWrite,
  ) {}

  private put(modelId: string, text: string, revision: number): Promise<number> {
    if (this.kvWrite) return this.kvWrite(modelId, text, revision);
    return revision > 0 ? this.kv.update(modelId, text, revision) : this.kv.create(modelId, text);
  }

  /**
   * A write is an effect of the single writer: it waits until this instance may act, and a timeout or a
   * disconnection retries it (with a growing wait, at most 2 s) until NATS answers; it fails for a reason
   * of its own (the pointer is elsewhere), or when the connection is closed for good.
   */
  private async write<T>(modelId: string, work: () => Promise<T>): Promise<T> {
    let waits = 0;
    for (let attempt = 0; ; attempt++) {
      if (this.fence?.closed())
        throw new WardenError('unavailable', 'registry: the NATS connection is closed', { retryable: true });
      if (this.fence && !(await this.fence.whenValid(modelId, 1_000))) {
        // The model moved to another instance (its partition given back or taken over): not ours to write.
        if (!this.fence.holds(modelId) && ++waits >= NOT_HOLDER_WAITS)
          throw new WardenError('unavailable', `registry: this instance no longer takes ${modelId}`, {
            retryable: true,
          });
        continue;
      }
      try {
        return await work();
      } catch (error) {
        if (!isTransient(error) || isWrongRevision(error)) throw error;
        this.onTransientFailure?.('registry', error);
        await sleep(Math.min(100 * 2 ** attempt, 2_000));
      }
    }
  }

  /**
   * Revision-checked, like a rollback: a write of an instance that lost the model, still in flight when the
   * new writer moved the pointer (a rollback), is refused instead of landing on top of it. Refused because
   * the pointer moved, it is read again and written again, each time only while this instance writes the
   * model (a pointer that a serving system moved between two promotions is written over, as it always was).
   */
  async recordPromotion(modelId: string, version: string, at: number, reason: string): Promise<void> {
    const entry: RegistryEntry = {
      model_id: modelId,
      version,
      since: isoTime(at)!,
      reason,
      rollback_id: null,
    };
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (await this.write(modelId, () => this.putPromotion(modelId, entry, attempt === 0))) return;
    }
    throw new Error(`registry: could not record the promotion of ${modelId}: the pointer kept changing`);
  }

  rollback(request: RollbackRequest): Promise<void> {
    return this.write(request.modelId, () => this.applyRollback(request));
  }

  async production(modelId: string): Promise<ProductionPointer | null> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readPointer(modelId);
      } catch (error) {
        if (attempt >= READ_ATTEMPTS || !isTransient(error)) throw error;
        this.onTransientFailure?.('registry', error);
        await sleep(100 * 2 ** attempt);
      }
    }
  }

  /** One revision-checked write of a promotion: false when the pointer moved since it was last known. */
  private async putPromotion(modelId: string, entry: RegistryEntry, knownFirst: boolean): Promise<boolean> {
    const known = knownFirst ? this.written.get(modelId)?.revision : undefined;
    const revision = known ?? (await this.kv.get(modelId))?.revision ?? 0;
    const text = JSON.stringify(entry);
    try {
      const written = await this.put(modelId, text, revision);
      this.remember(modelId, written, entry);
      return true;
    } catch (error) {
      this.written.delete(modelId);
      if (!isWrongRevision(error)) throw error;
      return false;
    }
  }

  private remember(modelId: string, revision: number, entry: RegistryEntry): void {
    this.written.delete(modelId);
    this.written.set(modelId, { revision, entry });
    if (this.written.size > WRITTEN_MEMORY) this.written.delete(this.written.keys().next().value!);
  }

  private async applyRollback(request: RollbackRequest): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const known = attempt === 0 ? this.written.get(request.modelId) : undefined;
      let current: RegistryEntry | null;
      let revision: number;
      if (known && known.entry.version === request.fromVersion && known.entry.rollback_id === null) {
        ({ entry: current, revision } = known);
      } else {
        const stored = await this.kv.get(request.modelId);
        const text = entryText(stored);
        current = text === null ? null : (JSON.parse(text) as RegistryEntry);
        revision = stored?.revision ?? 0;
      }
      const over = rollbackOver(
        current && {
          version: current.version,
          since: Date.parse(current.since),
          rollbackId: current.rollback_id,
        },
        request,
      );
      if (over === 'done') return; // applied before (a redelivery, a restart)
      if (over !== 'apply') throw new Error(over.refused);
      const next: RegistryEntry = {
        model_id: request.modelId,
        version: request.toVersion,
        since: isoTime(request.at)!,
        reason: request.reason,
        rollback_id: request.rollbackId,
      };
      try {
        this.remember(request.modelId, await this.put(request.modelId, JSON.stringify(next), revision), next);
        return;
      } catch (error) {
        this.written.delete(request.modelId);
        if (!isWrongRevision(error)) throw error;
        // Someone else moved the pointer meanwhile (another instance applying the same rollback): read again.
      }
    }
    throw new Error(
      `registry: could not apply rollback ${request.rollbackId} of ${request.modelId}: the pointer kept changing`,
    );
  }

  private async readPointer(modelId: string): Promise<ProductionPointer | null> {
    const stored = await this.kv.get(modelId);
    const text = entryText(stored);
    if (text === null) return null;
    const entry = JSON.parse(text) as RegistryEntry;
    // Remembered with its revision: a rollback of this version writes at once (see `written`).
    this.remember(modelId, stored!.revision, entry);
    return { modelId, version: entry.version, since: Date.parse(entry.since), reason: entry.reason };
  }
}
