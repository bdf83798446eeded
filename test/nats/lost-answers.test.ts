/**
 * A request whose connection is lost is never answered (nats-server answers on the connection the request
 * came on), and nats.js waits for it until the request's timeout. Warden's key and publication requests
 * fail as soon as their connection is lost instead (src/nats/lost-answers.ts): here with the client's
 * request timeout at a minute, over a proxy that cuts the connection right after the server took a KV write.
 */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { parseConfig } from '../../src/config/load.ts';
import { connectNats } from '../../src/nats/connection.ts';
import { KV_REQUESTS, LostAnswers, withLostAnswers } from '../../src/nats/lost-answers.ts';
import { useCuttingProxy } from '../harness/cutting-proxy.ts';
import { eventually } from '../harness/eventually.ts';
import { useSharedNats } from '../harness/shared-nats.ts';

const nats = useSharedNats();
const cutting = useCuttingProxy(nats);

const never = () => new Promise<never>(() => undefined);
/** What a request came to so far ('pending' until it settles). */
function settledOf(request: Promise<unknown>): { value: unknown } {
  const seen = { value: 'pending' as unknown };
  request.then(
    (v) => (seen.value = v),
    (e: unknown) => (seen.value = e),
  );
  return seen;
}

describe('a request whose connection is lost', () => {
  it('fails at once as unavailable (retryable), not after the request timeout; what it asked stands', async () => {
    const { nats: settings } = parseConfig({ nats: { url: cutting.proxy.url } });
    const link = await connectNats(settings, pino({ level: 'silent' }), 'lost-answers-test');
    try {
      const raw = await new Kvm(jetstream(link.nc, { timeout: 60_000 })).create('lost_answers', {
        history: 1,
      });
      const kv = withLostAnswers(raw, KV_REQUESTS, link.answers);
      await kv.put('before', 'answered'); // the connection works
      const cut = cutting.proxy.cutAfter((p) => p.subject === '$KV.lost_answers.k');
      const put = settledOf(kv.put('k', 'landed'));
      await cut;
      await eventually(() => expect(put.value).toMatchObject({ code: 'unavailable', retryable: true }), {
        timeoutMs: 5_000,
      });
      // While the client reconnects, a request is not answered either (nats.js 3.4): it fails at once too.
      if (!link.connected()) {
        const meanwhile = settledOf(kv.get('k'));
        await eventually(() => expect(meanwhile.value).toMatchObject({ code: 'unavailable' }), {
          timeoutMs: 5_000,
        });
      }
      // The write landed; once reconnected, requests are answered again.
      await eventually(() => expect(link.connected()).toBe(true), { timeoutMs: 5_000 });
      expect((await kv.get('k'))?.string()).toBe('landed');
    } finally {
      await link.close(1_000);
    }
  });
});

describe('LostAnswers', () => {
  it('fails what went out on the lost connection, and at once what is made while it is lost', async () => {
    const answers = new LostAnswers();
    const sent = settledOf(answers.watch(never()));
    answers.lost();
    const meanwhile = settledOf(answers.watch(never()));
    await Promise.resolve();
    await Promise.resolve();
    expect(sent.value).toMatchObject({ code: 'unavailable' });
    expect(meanwhile.value).toMatchObject({ code: 'unavailable' });
    answers.reconnected();
    const later = settledOf(answers.watch(Promise.resolve('ok')));
    const waiting = settledOf(answers.watch(never()));
    await Promise.resolve();
    await Promise.resolve();
    expect(later.value).toBe('ok');
    expect(waiting.value).toBe('pending');
    answers.lost();
    await Promise.resolve();
    expect(waiting.value).toMatchObject({ code: 'unavailable' });
  });

  it('passes answers and failures through, and fails everything once the connection is closed', async () => {
    const answers = new LostAnswers();
    await expect(answers.watch(Promise.resolve(7))).resolves.toBe(7);
    await expect(answers.watch(Promise.reject(new Error('wrong revision')))).rejects.toThrow(
      'wrong revision',
    );
    const waiting = answers.watch(never());
    answers.closed();
    await expect(waiting).rejects.toMatchObject({ code: 'unavailable', retryable: true });
  });
});
