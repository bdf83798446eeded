/** Warden.stop says which step it is in (a test's time budget then says where a stop hangs). */
import { rmSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { createWarden } from '../../src/warden.ts';
import { makeDataDir } from '../support/test-warden.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

it('reports each step of a stop as it begins, in order', async () => {
  const dir = await makeDataDir();
  dirs.push(dir);
  const warden = await createWarden(parseConfig({ dataDir: dir }));
  await warden.promote({ event_id: 'p1', model_id: 'm_v1', elo: 1500 });
  const steps: string[] = [];
  await warden.stop((step) => steps.push(step));
  expect(steps).toEqual([
    'stopping the runtime',
    'stopping the shadow policies',
    'closing the bus',
    'closing the store',
  ]);
});
