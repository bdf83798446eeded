import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { WardenError } from '../../src/domain/errors.ts';
import { createAuthPolicy } from '../../src/http/auth.ts';
import {
  OPERATOR_TOKEN,
  PRODUCER_TOKEN,
  promoteTwo,
  startTestService,
  type TestService,
} from '../http/support.ts';
import { VIEWER_TOKEN } from './support.ts';

const policy = (viewerTokens: string[], host = '0.0.0.0') =>
  createAuthPolicy({
    host,
    operatorTokens: [OPERATOR_TOKEN],
    producerTokens: [PRODUCER_TOKEN],
    viewerTokens,
  });

const services: TestService[] = [];
afterEach(async () => {
  for (const t of services.splice(0)) await t.close();
});

describe('ui: the viewer role', () => {
  it('reads need a token only once viewer tokens are configured; any known token reads', () => {
    const open = policy([]);
    expect(open.readsNeedToken).toBe(false);
    expect(open.authenticate(undefined, 'read')).toEqual({ identity: 'anonymous', role: null });
    const noTokens = createAuthPolicy({ host: '127.0.0.1', operatorTokens: [], producerTokens: [] });
    expect(noTokens.authenticate(undefined, 'read')).toEqual({ identity: 'local', role: null });

    const closed = policy([VIEWER_TOKEN]);
    expect(closed.readsNeedToken).toBe(true);
    const refused = closed.authenticate(undefined, 'read') as WardenError;
    expect(refused.code).toBe('unauthorized');
    expect(refused.message).toBe(
      'expected an "Authorization: Bearer <token>" header with a viewer, operator or producer token',
    );
    for (const [token, role] of [
      [VIEWER_TOKEN, 'viewer'],
      [OPERATOR_TOKEN, 'operator'],
      [PRODUCER_TOKEN, 'producer'],
    ] as const) {
      expect(closed.authenticate(`Bearer ${token}`, 'read')).toMatchObject({ role });
    }
    // A wrong token is refused even while reads are open: it is a mistake worth saying.
    expect((open.authenticate('Bearer not-a-configured-token', 'read') as WardenError).code).toBe(
      'unauthorized',
    );
  });

  it('a viewer token never changes anything, and viewer tokens alone do not close loopback commands', () => {
    const viewer = policy([VIEWER_TOKEN]).authenticate(`Bearer ${VIEWER_TOKEN}`, 'command') as WardenError;
    expect(viewer.code).toBe('forbidden');
    expect(viewer.message).toBe('a viewer token may only read; expected an operator token');
    const onlyViewers = createAuthPolicy({
      host: '127.0.0.1',
      operatorTokens: [],
      producerTokens: [],
      viewerTokens: [VIEWER_TOKEN],
    });
    expect(onlyViewers.mode).toBe('loopback');
    expect(onlyViewers.authenticate(undefined, 'command')).toEqual({ identity: 'local', role: null });
    expect((onlyViewers.authenticate(undefined, 'read') as WardenError).code).toBe('unauthorized');
  });

  it('never throws and never lets an unknown token through, whatever the Authorization header holds', () => {
    const auth = policy([VIEWER_TOKEN]);
    const known = new Set([OPERATOR_TOKEN, PRODUCER_TOKEN, VIEWER_TOKEN]);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 10_000 }),
          fc.string().map((s) => `Bearer ${s}`),
          fc.constantFrom('Bearer', 'Bearer ', 'bearer  x', 'Basic abc', '\u0000', 'Bearer \u00e9\u{1F600}'),
        ),
        fc.constantFrom('read', 'command', 'input'),
        (header, access) => {
          const result = auth.authenticate(header, access as 'read' | 'command' | 'input');
          const presented = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
          if (!(result instanceof WardenError))
            expect(presented !== undefined && known.has(presented)).toBe(true);
        },
      ),
    );
  });

  it('over HTTP: reads are refused without a token, a viewer reads but is refused a command, and the start-up log says so', async () => {
    const t = await startTestService({ http: { viewerTokens: [VIEWER_TOKEN] } });
    services.push(t);
    await promoteTwo(t);
    for (const path of ['/v1/models', '/v1/models/hex8_2p', '/v1/training', '/v1/rollbacks', '/ui/api/live'])
      expect((await t.api('GET', path)).status).toBe(401);
    expect((await t.api('GET', '/healthz')).status).toBe(200);
    expect((await t.api('GET', '/v1/models', undefined, VIEWER_TOKEN)).body.models).toHaveLength(1);
    const refused = await t.api('POST', '/v1/models/hex8_2p/rollback', { reason: 'x' }, VIEWER_TOKEN);
    expect(refused.status).toBe(403);
    expect(refused.body.error.message).toBe('a viewer token may only read; expected an operator token');
    expect(t.log.text()).toContain('reads need a token (1 viewer)');
    expect(t.log.text()).not.toContain(VIEWER_TOKEN);
  });
});
