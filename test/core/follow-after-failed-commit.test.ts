/**
 * Several instances share a store (NATS mode). A record another instance commits while a commit of this
 * instance's own copy of that actor is in flight is not applied to the copy then: that commit decides. If it
 * fails for a reason of its own (NATS away, a timeout, this instance no longer holding the lease), the copy
 * goes back to its last committed state, older than the record, and the record must still be followed: the
 * watch brings it only once. Seen in the chaos tests: after a NATS outage, the instance answering status
 * showed four models of the partition it held when NATS went away as they were before, for good, while the
 * state bucket held what another instance committed after it took the partition over.
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createWarden, type Warden } from '../../src/warden.ts';
import { eventually } from '../harness/eventually.ts';
import { FakeRegistry } from '../support/fake-registry.ts';
import { makeDataDir } from '../support/test-warden.ts';
import { SharedRecords, SharedStore } from '../support/shared-store.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function instance(shared: SharedRecords): Promise<{ warden: Warden; store: SharedStore }> {
  const dir = await makeDataDir();
  dirs.push(dir);
  const store = new SharedStore(shared);
  const warden = await createWarden(parseConfig({ dataDir: dir }), {
    clock: new ManualClock(),
    registry: new FakeRegistry(true),
    store,
  });
  return { warden, store };
}

const production = (warden: Warden) => warden.status('m').models[0]!.production_version;

describe('a copy whose own commit failed while another instance committed the actor', () => {
  it('follows the other instance’s commit once its own has failed', async () => {
    const shared = new SharedRecords();
    const a = await instance(shared);
    const b = await instance(shared);
    try {
      await a.warden.promote({ model_id: 'm', version: 'v1', elo: 1500 });
      await eventually(() => expect(production(b.warden)).toBe('v1'));

      // A's next commit is in flight (held), and will fail as when NATS goes away.
      let reached!: () => void;
      const inFlight = new Promise<void>((resolve) => (reached = resolve));
      let release!: () => void;
      a.store.failNext = { reached, release: new Promise<void>((resolve) => (release = resolve)) };
      const failing = a.warden.promote({ model_id: 'm', version: 'v2', elo: 1510 });
      await inFlight;

      // Meanwhile B commits the model (as the instance that took it over would).
      await b.warden.promote({ model_id: 'm', version: 'v3', elo: 1520 });
      expect(shared.records.get('model:m')!.revision).toBe(2);

      release();
      await expect(failing).rejects.toThrow(/NATS is away/);
      // A's copy is B's commit, not the state A last committed itself.
      await eventually(() => expect(production(a.warden)).toBe('v3'), { timeoutMs: 2_000 });
    } finally {
      await a.warden.stop();
      await b.warden.stop();
    }
  });
});
