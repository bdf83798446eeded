/**
 * A store shared by several instances, in memory (NATS mode's shape: revision-checked per actor, each
 * instance told of the others' commits), with the faults of a store across a network.
 */
import type {
  ActorRecord,
  CommitBatch,
  OutboxEntry,
  PartResult,
  StateStore,
  Unsubscribe,
} from '../../src/actors/ports.ts';
import { ConflictError, WardenError } from '../../src/domain/errors.ts';

/** Records committed by any handle, revision-checked per actor; each handle hears the others' commits. */
export class SharedRecords {
  readonly records = new Map<string, ActorRecord>();
  readonly handles = new Set<SharedStore>();
}

/**
 * One instance's handle on the shared records. `failNext` holds its next commit, then fails it (known not
 * written). `dropNext`: see there. `landNext`:
 * its next commit of that actor kind is written, but answered as a write that got no answer (the reply lost
 * with NATS), and this handle's own listeners hear of the record only at `deliverLanded` (its watch, once
 * NATS is back).
 */
export class SharedStore implements StateStore {
  private readonly listeners = new Set<(record: ActorRecord) => void>();
  failNext: { reached: () => void; release: Promise<void> } | null = null;
  landNext: ActorRecord['kind'] | null = null;
  /** Its next commit is not written, and answered as a write that got no answer (lost on its way). */
  dropNext = false;
  private landed: ActorRecord[] = [];

  constructor(private readonly shared: SharedRecords) {
    shared.handles.add(this);
  }

  async loadActors(kind: ActorRecord['kind']): Promise<ActorRecord[]> {
    return [...this.shared.records.values()].filter((r) => r.kind === kind);
  }

  async loadActor(kind: ActorRecord['kind'], key: string): Promise<ActorRecord | null> {
    return this.shared.records.get(`${kind}:${key}`) ?? null;
  }

  async commit(batch: CommitBatch): Promise<number[]> {
    const [result] = await this.commitEach([batch]);
    if (!result!.ok) throw result!.error;
    return [result!.revision];
  }

  async commitEach(parts: readonly CommitBatch[]): Promise<PartResult[]> {
    const failing = this.failNext;
    if (failing) {
      this.failNext = null;
      failing.reached();
      await failing.release;
      const away = new WardenError('unavailable', 'NATS is away', { retryable: true });
      return parts.map(() => ({ ok: false, error: away }));
    }
    if (this.dropNext) {
      this.dropNext = false;
      const lost = new WardenError('unavailable', 'the write got no answer', { retryable: true });
      return parts.map(() => ({ ok: false, error: lost, outcomeUnknown: true }));
    }
    return parts.map((part) => {
      if (part.actors[0]?.kind !== this.landNext) return this.commitOne(part);
      this.landNext = null;
      const result = this.commitOne(part);
      if (!result.ok) return result;
      this.landed.push(this.shared.records.get(`${part.actors[0].kind}:${part.actors[0].key}`)!);
      const timeout = new WardenError('unavailable', 'the write got no answer', { retryable: true });
      return { ok: false, error: timeout, outcomeUnknown: true };
    });
  }

  /** This handle's watch brings the records written by `landNext` commits. */
  deliverLanded(): void {
    for (const record of this.landed.splice(0)) for (const listener of this.listeners) listener(record);
  }

  private commitOne(part: CommitBatch): PartResult {
    const actor = part.actors[0]!;
    const id = `${actor.kind}:${actor.key}`;
    if ((this.shared.records.get(id)?.revision ?? 0) !== actor.revision)
      return { ok: false, error: new ConflictError(`${id} changed since revision ${actor.revision}`) };
    const record: ActorRecord = { ...actor, revision: actor.revision + 1 };
    this.shared.records.set(id, record);
    for (const handle of this.shared.handles)
      if (handle !== this) for (const listener of handle.listeners) listener(record);
    return { ok: true, revision: record.revision };
  }

  async pendingOutbox(): Promise<OutboxEntry[]> {
    return [];
  }
  async markPublished(): Promise<void> {}
  async history(): Promise<[]> {
    return [];
  }
  async close(): Promise<void> {}

  watch(listener: (record: ActorRecord) => void): Unsubscribe {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
