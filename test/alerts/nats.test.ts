import { afterEach, describe, expect, it } from 'vitest';
import { startAlerts, type Alerts } from '../../src/alerts/index.ts';
import { alertBucketName } from '../../src/alerts/kv-ledger.ts';
import { alertTargets } from '../../src/alerts/targets.ts';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ALERT_KINDS } from '../../src/domain/events.ts';
import { silentLogger } from '../../src/logger.ts';
import { eventually } from '../harness/eventually.ts';
import { startNatsWarden, type NatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';
import { alertOf, countsByEvent, startReceiver, type Receiver } from './receiver.ts';

const nats = useSharedNats();
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A Warden instance in NATS mode with its alert delivery, as buildService wires them. */
async function instance(
  config: ConfigInput,
  clock?: ManualClock,
): Promise<{ node: NatsWarden; alerts: Alerts }> {
  const node = await startNatsWarden(nats.server.url, { config });
  const alerts = (await startAlerts(node.warden, node.warden.config, { logger: silentLogger, clock }))!;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await alerts.close();
    await node.stop();
  };
  closers.push(stop);
  // The alert consumer starts at "new" messages when it is first made (once per deployment): wait for it.
  const stream = `${node.warden.prefix.toUpperCase()}_EVENTS`;
  await eventually(() => nats.client.jsm.consumers.info(stream, `${node.warden.prefix}_alerts`));
  return { node, alerts: { ...alerts, close: stop } };
}

function config(r: Receiver, prefix: string): ConfigInput {
  return {
    nats: { prefix },
    detection: { mode: 'threshold' },
    approval: { requireForSevere: true },
    alerts: {
      routes: [
        { url: `${r.url}/slack`, format: 'slack', levels: ['critical'] },
        { url: `${r.url}/json`, format: 'json' },
      ],
      // Real time here (the consumer's redeliveries run on it): short backoffs.
      initialBackoffMs: 50,
      maxBackoffMs: 200,
    },
  };
}

async function receiver(): Promise<Receiver> {
  const r = await startReceiver();
  closers.push(r.close);
  return r;
}

/** An alert as the model actor publishes it, for the kinds a test cannot easily provoke. */
const synthetic = (prefix: string, kind: (typeof ALERT_KINDS)[number], n: number) => ({
  subject: `${prefix}.evt.alert.go9`,
  payload: {
    event_id: `go9.e${n}`,
    timestamp: 1_767_225_600 + n,
    model_id: 'go9',
    config_key: 'go9',
    level:
      kind === 'approval_expired' || kind === 'rate_limited' || kind === 'rolled_back'
        ? 'warning'
        : 'critical',
    kind,
    message: `${kind} of go9`,
  },
});

describe('alerts in NATS mode (real nats-server)', { timeout: 60_000 }, () => {
  it('with two instances, every alert reaches each of its routes exactly once', async () => {
    const r = await receiver();
    const prefix = 'two';
    await instance(config(r, prefix));
    await instance(config(r, prefix));
    const publish = (subject: string, payload: unknown) => nats.client.publish(subject, payload);
    // From Warden itself: an approval request (SEVERE), a critical regression, its rollback and pause.
    await publish(`${prefix}.in.promotion.hex8_2p`, { model_id: 'hex8_2p_v1', elo: 1500 });
    await publish(`${prefix}.in.promotion.hex8_2p`, { model_id: 'hex8_2p_v2', elo: 1520 });
    await publish(`${prefix}.in.evaluation.hex8_2p`, {
      model_id: 'hex8_2p_v2',
      current_elo: 1460,
      games_played: 200,
    });
    await publish(`${prefix}.in.promotion.sq9_4p`, { model_id: 'sq9_4p_v1', elo: 1500 });
    await publish(`${prefix}.in.promotion.sq9_4p`, { model_id: 'sq9_4p_v2', elo: 1520 });
    await publish(`${prefix}.in.evaluation.sq9_4p`, {
      model_id: 'sq9_4p_v2',
      current_elo: 1400,
      games_played: 200,
    });
    // The other kinds, as the actors would publish them; the receiver fails some first attempts.
    r.statuses.push(503, 500, 429);
    const others = [
      'approval_expired',
      'rate_limited',
      'rollback_failed',
      'pause_unacknowledged',
      'input_dead_lettered',
    ] as const;
    for (const [i, kind] of others.entries()) {
      const { subject, payload } = synthetic(prefix, kind, 100 + i);
      await publish(subject, payload);
    }

    await eventually(
      () => {
        const kinds = r.accepted('/json').map((x) => String(alertOf(x).kind));
        expect(new Set(kinds)).toEqual(new Set(ALERT_KINDS));
        expect(kinds).toHaveLength(8);
        const critical = r.accepted('/json').filter((x) => alertOf(x).level === 'critical');
        expect(r.accepted('/slack')).toHaveLength(critical.length);
      },
      { timeoutMs: 30_000 },
    );
    const json = r.accepted('/json');
    const slack = r.accepted('/slack');
    expect([...countsByEvent(json).values()]).toEqual(json.map(() => 1));
    expect([...countsByEvent(slack).values()]).toEqual(slack.map(() => 1));
    expect(slack.length).toBe(json.filter((x) => alertOf(x).level === 'critical').length);
    expect(r.received.filter((x) => x.status !== 200)).toHaveLength(3);
    // Nothing comes twice later either: the consumer holds nothing more.
    await eventually(async () => {
      const info = await nats.client.jsm.consumers.info('TWO_EVENTS', `${prefix}_alerts`);
      expect(info.num_ack_pending + info.num_pending).toBe(0);
    });
    expect(r.received.filter((x) => x.status === 200)).toHaveLength(json.length + slack.length);
  });

  it('a delivery that failed is made once after the instance that tried it restarts', async () => {
    const r = await receiver();
    const prefix = 'restart';
    const settings: ConfigInput = {
      ...config(r, prefix),
      alerts: { routes: [{ url: `${r.url}/json` }], initialBackoffMs: 10_000 },
    };
    r.statuses.push(500);
    const firstClock = new ManualClock();
    const first = await instance(settings, firstClock);
    const { subject, payload } = synthetic(prefix, 'rollback_failed', 1);
    await nats.client.publish(subject, payload);
    const [target] = alertTargets(parseConfig(settings).alerts);
    const key = `go9.e1.${target!.id}`;
    await eventually(async () =>
      expect(await nats.client.kv(alertBucketName(prefix), key)).toMatchObject({
        status: 'pending',
        attempts: 1,
        dueAt: firstClock.now() + 10_000,
        problem: 'HTTP 500 try later',
      }),
    );
    await first.alerts.close();
    expect(r.received.map((x) => x.status)).toEqual([500]);

    // A new instance (a new process: its own clock) finds the delivery pending, waits for its backoff,
    // then makes it once.
    const clock = new ManualClock();
    await instance(settings, clock);
    clock.advance(9_000);
    expect(r.received).toHaveLength(1);
    clock.advance(1_000);
    await eventually(() => expect(r.received.map((x) => x.status)).toEqual([500, 200]), {
      timeoutMs: 20_000,
    });
    await eventually(async () => {
      expect(await nats.client.kv(alertBucketName(prefix), key)).toMatchObject({
        status: 'delivered',
        attempts: 2,
      });
      const info = await nats.client.jsm.consumers.info('RESTART_EVENTS', `${prefix}_alerts`);
      expect(info.num_ack_pending + info.num_pending).toBe(0);
    });
    expect(r.received).toHaveLength(2);
  });
});
