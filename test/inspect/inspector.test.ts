import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { connectInspector } from '../../src/inspect/inspector.ts';
import { originAllowed, startRelay } from '../../src/inspect/relay.ts';
import { silentLogger } from '../../src/logger.ts';
import { createWarden } from '../../src/warden.ts';
import { PRODUCER_TOKEN, startTestService } from '../http/support.ts';
import { launchBrowser } from '../ui/support.ts';

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

/** Opens a WebSocket to the relay with the given headers; resolves with the HTTP status it was refused with, or 101. */
function handshake(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => {
      socket.terminate();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('error', (error) => reject(error));
  });
}

describe('inspect: the relay is only for its own page', () => {
  it('refuses a WebSocket from a foreign origin, and from a host name a page chose (DNS rebinding)', async () => {
    const relay = await startRelay({ port: 0 });
    closers.push(relay.close);
    const own = new URL(relay.pageUrl).origin;
    const port = new URL(relay.pageUrl).port;
    expect(await handshake(relay.eventsUrl, { origin: 'http://evil.example' })).toBe(403);
    expect(
      await handshake(relay.eventsUrl, {
        origin: `http://evil.example:${port}`,
        host: `evil.example:${port}`,
      }),
    ).toBe(403);
    expect(await handshake(relay.eventsUrl, { origin: own })).toBe(101);
    expect(
      await handshake(relay.eventsUrl, { origin: `http://localhost:${port}`, host: `localhost:${port}` }),
    ).toBe(101);
    // Warden's own inspector is not a browser: it sends no Origin.
    expect(await handshake(relay.eventsUrl, {})).toBe(101);
  });

  it('listens where it is told (0.0.0.0 in a container), and Warden still sends to it over loopback', async () => {
    const relay = await startRelay({ port: 0, host: '0.0.0.0' });
    closers.push(relay.close);
    expect(relay.eventsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/events$/);
    expect(await handshake(relay.eventsUrl, {})).toBe(101);
    expect((await fetch(relay.pageUrl)).status).toBe(200);
  });

  it('never throws on hostile Origin and Host headers, and only lets a same-origin page through', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.webUrl(),
          fc.constant('null'),
          fc.constant('http://[::1'),
          fc.string({ maxLength: 5000 }),
        ),
        fc.oneof(fc.string(), fc.domain(), fc.constant('127.0.0.1:8090')),
        (origin, host) => {
          const allowed = originAllowed(origin, host, '127.0.0.1');
          if (allowed) {
            const url = new URL(origin);
            expect(url.host).toBe(host.toLowerCase());
          }
        },
      ),
    );
  });
});

// The first browser test of a fresh clone also builds the dashboard (launchBrowser does): allow for it.
describe('inspect: the relay page in a real browser', { timeout: 90_000 }, () => {
  it('says plainly when stately.ai cannot be reached, points to /ui, and reconnects after a restart', async () => {
    // An inspector URL that cannot answer stands in for stately.ai on a cluster without internet.
    const options = {
      port: 0,
      inspectorUrl: 'http://127.0.0.1:9/inspect',
      dashboardPort: 8080,
      readyTimeoutMs: 300,
    };
    let relay = await startRelay(options);
    const port = Number(new URL(relay.pageUrl).port);
    const browser = await launchBrowser();
    closers.push(async () => {
      await browser.close();
      await relay.close();
    });
    const page = await browser.context.newPage();
    await page.goto(relay.pageUrl);
    await page
      .getByRole('alert')
      .getByText('The Stately inspector cannot be reached')
      .waitFor({ timeout: 10_000 });
    expect(await page.getByRole('link', { name: 'open the dashboard at /ui' }).getAttribute('href')).toBe(
      'http://127.0.0.1:8080/ui',
    );
    await page.getByRole('status').getByText('connected to Warden').waitFor({ timeout: 10_000 });
    await relay.close();
    await page.getByRole('status').getByText('disconnected from Warden').waitFor({ timeout: 10_000 });
    relay = await startRelay({ ...options, port });
    await page
      .getByRole('status')
      .getByText('connected to Warden', { exact: true })
      .waitFor({ timeout: 10_000 });
  });
});
