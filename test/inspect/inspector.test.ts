import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { connectInspector } from '../../src/inspect/inspector.ts';
import { startRelay } from '../../src/inspect/relay.ts';
import { silentLogger } from '../../src/logger.ts';
import { createWarden } from '../../src/warden.ts';
import { PRODUCER_TOKEN, startTestService } from '../http/support.ts';

interface Message {
  type: string;
  sessionId: string;
  name?: string;
  event?: { type: string };
  snapshot?: { value?: unknown; context?: { modelId?: string } };
}

/** Collects JSON messages and resolves waits when a predicate over everything received holds. */
function collector() {
  const messages: Message[] = [];
  const waiters: Array<{ check: () => boolean; resolve: () => void }> = [];
  return {
    messages,
    push(text: string) {
      messages.push(JSON.parse(text) as Message);
      for (const w of waiters.filter((w) => w.check())) w.resolve();
    },
    /** Bounded by the test's timeout; resolves as soon as `check` holds. */
    until(check: () => boolean): Promise<void> {
      if (check()) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ check, resolve }));
    },
  };
}

/** A local WebSocket receiver standing in for the inspector's relay. */
async function receiver() {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const received = collector();
  server.on('connection', (socket) => socket.on('message', (data) => received.push(data.toString())));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}

/**
 * The three kinds of message the inspector shows for one model actor, found by its actor id: its
 * registration, the PROMOTED event sent to it, and the snapshot that event produced.
 */
function modelActorMessages(messages: readonly Message[], modelId: string) {
  const actor = messages.find((m) => m.type === '@xstate.actor' && m.name === `model:${modelId}`);
  const session = actor?.sessionId;
  const ofActor = (type: string) => messages.filter((m) => m.type === type && m.sessionId === session);
  return {
    actor,
    promoted: ofActor('@xstate.event').find((m) => m.event?.type === 'PROMOTED'),
    snapshot: ofActor('@xstate.snapshot').find((m) => m.event?.type === 'PROMOTED'),
  };
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

describe('inspect: Stately inspector', () => {
  it('delivers actor, event and snapshot messages for a model actor to a WebSocket receiver', async () => {
    const target = await receiver();
    closers.push(target.close);
    const dir = mkdtempSync(join(tmpdir(), 'warden-inspect-'));
    const inspector = connectInspector(target.url, silentLogger);
    const warden = await createWarden(parseConfig({ dataDir: dir }), {
      clock: new ManualClock(),
      inspect: inspector.inspect,
    });
    closers.push(async () => {
      await warden.stop();
      inspector.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    await warden.promote({ model_id: 'hex8_2p', version: 'v1', elo: 1500 });
    await target.received.until(() => {
      const found = modelActorMessages(target.received.messages, 'hex8_2p');
      return Boolean(found.actor && found.promoted && found.snapshot);
    });
    const found = modelActorMessages(target.received.messages, 'hex8_2p');
    expect(found.actor).toMatchObject({ type: '@xstate.actor', name: 'model:hex8_2p' });
    expect(found.promoted?.event).toMatchObject({ type: 'PROMOTED', version: 'v1', elo: 1500 });
    expect(found.snapshot?.snapshot).toMatchObject({
      value: 'healthy',
      context: { modelId: 'hex8_2p', productionVersion: 'v1' },
    });
  });

  it('is wired by the service when `inspect` is on, and the relay replays actors to a late browser', async () => {
    const relay = await startRelay({ port: 0 });
    closers.push(relay.close);
    const t = await startTestService({ inspect: true }, { inspection: { url: relay.eventsUrl } });
    closers.push(t.close);
    expect(t.service.endpoints).toContain(`Stately inspector: events go to ${relay.eventsUrl}`);
    await t.api('POST', '/v1/promotions', { model_id: 'm7', version: 'v1', elo: 1500 }, PRODUCER_TOKEN);
    await t.service.warden.idle();

    // A browser that connects after the fact still gets the actor and its current snapshot.
    const browser = new WebSocket(relay.eventsUrl);
    const seen = collector();
    browser.on('message', (data) => seen.push(data.toString()));
    closers.push(async () => browser.terminate());
    await seen.until(() =>
      Boolean(
        modelActorMessages(seen.messages, 'm7').actor && modelActorMessages(seen.messages, 'm7').snapshot,
      ),
    );
    expect(modelActorMessages(seen.messages, 'm7').snapshot?.snapshot?.context).toMatchObject({
      productionVersion: 'v1',
    });

    // ...then live events.
    await t.api(
      'POST',
      '/v1/evaluations',
      { model_id: 'm7', current_elo: 1490, games_played: 100 },
      PRODUCER_TOKEN,
    );
    await seen.until(() =>
      seen.messages.some((m) => m.type === '@xstate.event' && m.event?.type === 'EVALUATED'),
    );
    expect(seen.messages.filter((m) => m.type === '@xstate.event').map((m) => m.event?.type)).toContain(
      'EVALUATED',
    );

    const page = await fetch(relay.pageUrl);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toContain('https://stately.ai/inspect');
  });
});
