import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { startNatsWarden } from '../harness/nats-warden.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();

const evaluation = 'warden.in.evaluation.hex8_2p';
const promotion = 'warden.in.promotion.hex8_2p';

/** Every kind of bad input: [what, subject, payload as sent (strings go as they are), kind it is counted as]. */
const BAD: Array<[string, string, unknown, string]> = [
  ['not JSON', evaluation, 'games_played=100', 'evaluation'],
  ['NaN as a payload', evaluation, 'NaN', 'evaluation'],
  ['NaN in a field', evaluation, '{"model_id":"hex8_2p","games_played":NaN}', 'evaluation'],
  ['empty', evaluation, '', 'evaluation'],
  ['a JSON array', promotion, '[1,2,3]', 'promotion'],
  ['null', promotion, 'null', 'promotion'],
  ['wrong type', evaluation, { model_id: 'hex8_2p', games_played: '100' }, 'evaluation'],
  ['wrong type for an id', promotion, { model_id: 42, version: 'v9' }, 'promotion'],
  ['negative count', evaluation, { model_id: 'hex8_2p', games_played: -3 }, 'evaluation'],
  [
    'negative rate',
    evaluation,
    { model_id: 'hex8_2p', games_played: 10, current_win_rate: -0.5 },
    'evaluation',
  ],
  ['huge count', evaluation, { model_id: 'hex8_2p', games_played: 1e15 }, 'evaluation'],
  ['huge Elo', promotion, { model_id: 'hex8_2p', version: 'v9', elo: 1e300 }, 'promotion'],
  ['unknown field', evaluation, { model_id: 'hex8_2p', games_played: 100, colour: 'red' }, 'evaluation'],
  [
    'subject token is another model',
    'warden.in.evaluation.sq19_4p',
    { model_id: 'hex8_2p', games_played: 100 },
    'evaluation',
  ],
  [
    'model id that is not a token',
    'warden.in.promotion.hex8$2p',
    { model_id: 'hex8$2p', version: 'v1' },
    'promotion',
  ],
  [
    'oversized',
    evaluation,
    JSON.stringify({ model_id: 'hex8_2p', games_played: 100, note: 'x'.repeat(100_000) }),
    'evaluation',
  ],
  [
    'subject with two id tokens',
    'warden.in.evaluation.hex8.2p',
    { model_id: 'hex8_2p', games_played: 100 },
    'evaluation',
  ],
  ['unknown input kind', 'warden.in.result.hex8_2p', { model_id: 'hex8_2p', games_played: 100 }, 'unknown'],
];

describe('bad input over NATS', () => {
  it('gets a warden.evt.rejected message and a count for each kind, and every good message around it is processed', async () => {
    await using w = await startNatsWarden(nats.server.url, { clock: new ManualClock() });
    const good: string[] = [];
    for (const [index, [, subject, payload]] of BAD.entries()) {
      const version = `v${index + 1}`;
      good.push(version);
      await nats.client.publish(promotion, {
        event_id: `good-${index}`,
        model_id: `hex8_2p_${version}`,
        elo: 1500 + index,
      });
      await nats.client.publish(subject, payload);
    }
    // v18 came in at 1517: a minor regression, so the last good message shows too.
    await nats.client.publish(evaluation, {
      event_id: 'good-last',
      model_id: 'hex8_2p',
      current_elo: 1492,
      games_played: 100,
    });
    await w.settled();

    const model = w.warden.status('hex8_2p').models[0]!;
    expect(model.versions.map((v) => v.version)).toEqual(good);
    expect(model.production_version).toBe(`v${BAD.length}`);
    expect(model.last_detection).toMatchObject({ severity: 'minor' });

    const rejected = await nats.client.stored('warden.evt.rejected.>');
    expect(rejected).toHaveLength(BAD.length);
    const bySubjectAndRaw = (a: { subject: string; raw: string }, b: { subject: string; raw: string }) =>
      `${a.subject} ${a.raw}`.localeCompare(`${b.subject} ${b.raw}`);
    const seen = rejected.map((r) => {
      const data = r.data as { subject: string; raw: string; error: { code: string; message: string } };
      expect(r.subject).toBe(`warden.evt.rejected.${BAD.find(([, s]) => s === data.subject)?.[3]}`);
      expect(data.error.code).toBe('invalid_input');
      expect(data.error.message.length).toBeGreaterThan(10);
      expect(data.raw.length).toBeLessThanOrEqual(1025);
      return { subject: data.subject, raw: data.raw };
    });
    const sent = BAD.map(([, subject, payload]) => {
      const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
      return { subject, raw: text.length > 1024 ? `${text.slice(0, 1024)}…` : text };
    });
    expect(seen.sort(bySubjectAndRaw)).toEqual(sent.sort(bySubjectAndRaw));
    // Each refusal names its input's place in the stream as message id: delivered again (after a crash, or
    // with a group of inputs that goes one at a time), it is not published twice.
    const ids = rejected.map((r) => r.msgId);
    expect(ids).toEqual(ids.map(() => expect.stringMatching(/^rejected:WARDEN_IN@[0-9a-z]+:\d+$/)));
    expect(new Set(ids).size).toBe(ids.length);

    const expectedCounts = new Map<string, number>();
    for (const [, , , kind] of BAD) expectedCounts.set(kind, (expectedCounts.get(kind) ?? 0) + 1);
    expect(w.rejected).toEqual(expectedCounts);
  });

  it('says clearly why: the field, what was expected and what was received', async () => {
    await using w = await startNatsWarden(nats.server.url, { clock: new ManualClock() });
    const errors = async () =>
      (await nats.client.stored('warden.evt.rejected.>')).map(
        (r) => (r.data as { error: { message: string; issues?: string[] } }).error,
      );
    const before = (await errors()).length;
    await nats.client.publish(evaluation, { model_id: 'hex8_2p', games_played: -3 });
    await nats.client.publish(
      evaluation,
      JSON.stringify({ model_id: 'hex8_2p', games_played: 1, pad: 'y'.repeat(70_000) }),
    );
    await w.settled();
    // Both are one model's and may be taken as one group, whose refusals are published as each is found:
    // their order is not promised, only that each says why.
    const refusals = (await errors()).slice(before);
    expect(refusals).toHaveLength(2);
    const negative = refusals.find((e) => e.issues?.some((i) => i.startsWith('games_played')));
    const large = refusals.find((e) => e !== negative);
    expect(negative!.issues).toEqual([expect.stringMatching(/^games_played: .*received -3$/)]);
    expect(large!.message).toMatch(/at most 65536 bytes, received 700\d\d bytes/);
  });
});
