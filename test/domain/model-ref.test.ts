import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import {
  TOKEN_PATTERN,
  configKeyFor,
  isToken,
  parseModelRef,
  resolveModelRef,
} from '../../src/domain/model-ref.ts';
import { createWarden, type Warden } from '../../src/warden.ts';

describe('parseModelRef', () => {
  it.each<[string, string | undefined, string, string | undefined]>([
    ['hex8_2p_v42', undefined, 'hex8_2p', 'v42'],
    ['hex8_2p', undefined, 'hex8_2p', undefined],
    ['canonical_hex8_2p', undefined, 'canonical_hex8_2p', undefined],
    ['canonical_hex8_2p_v7', undefined, 'canonical_hex8_2p', 'v7'],
    ['square8_2p_v42', 'v42', 'square8_2p', 'v42'],
    ['square8_2p', 'v42', 'square8_2p', 'v42'],
    ['hex8_2p_v3.1', undefined, 'hex8_2p', 'v3.1'],
    ['hex8_2p_v42_v43', undefined, 'hex8_2p_v42', 'v43'],
    ['hex8', undefined, 'hex8', undefined],
    ['v42', undefined, 'v42', undefined],
    ['_v42', undefined, '_v42', undefined],
    ['hex8_2p_V42', undefined, 'hex8_2p_V42', undefined],
    ['hex8_2pv42', undefined, 'hex8_2pv42', undefined],
    ['hex8_2p_v', undefined, 'hex8_2p_v', undefined],
    ['hex8_2p_vx1', undefined, 'hex8_2p_vx1', undefined],
  ])('%j with version %j is model %j, version %j', (ref, explicit, modelId, version) => {
    expect(parseModelRef(ref, explicit)).toEqual({ modelId, version });
  });

  it('an explicit version strips only a matching suffix; any other suffix is part of the model id', () => {
    expect(parseModelRef('square8_2p_v42', 'v43')).toEqual({ modelId: 'square8_2p_v42', version: 'v43' });
    expect(parseModelRef('square8_2p_2024-06', '2024-06')).toEqual({
      modelId: 'square8_2p',
      version: '2024-06',
    });
    expect(parseModelRef('square8_2pv42', 'v42')).toEqual({ modelId: 'square8_2pv42', version: 'v42' });
  });

  it('never strips the whole reference to an empty model id', () => {
    expect(parseModelRef('_v42', 'v42')).toEqual({ modelId: '_v42', version: 'v42' });
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z0-9_.-]{1,40}$/),
        fc.option(fc.stringMatching(/^[A-Za-z0-9_.-]{1,10}$/), { nil: undefined }),
        (ref, version) => {
          const parsed = parseModelRef(ref, version);
          expect(parsed.modelId.length).toBeGreaterThan(0);
          // The model id and version are read from the reference, never invented.
          expect(ref.startsWith(parsed.modelId)).toBe(true);
          if (version !== undefined) expect(parsed.version).toBe(version);
        },
      ),
    );
  });

  it('folding the version into the id and reading it back is the identity', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,30}$/),
        fc.nat({ max: 10_000 }),
        (modelId, n) => {
          expect(parseModelRef(`${modelId}_v${n}`)).toEqual({ modelId, version: `v${n}` });
          expect(parseModelRef(`${modelId}_v${n}`, `v${n}`)).toEqual({ modelId, version: `v${n}` });
        },
      ),
    );
  });
});

describe('resolveModelRef: a known model id wins over the suffix reading (issue 8, finding 4)', () => {
  const known =
    (...ids: string[]) =>
    (id: string) =>
      ids.includes(id);

  it('a reference that is exactly a known model is that model, with or without a version', () => {
    expect(resolveModelRef('resnet_v2', undefined, known('resnet_v2'))).toEqual({
      modelId: 'resnet_v2',
      version: undefined,
    });
    expect(resolveModelRef('resnet_v2', 'v2', known('resnet_v2'))).toEqual({
      modelId: 'resnet_v2',
      version: 'v2',
    });
    // Both readings name a known model: the exact one wins.
    expect(resolveModelRef('resnet_v2', undefined, known('resnet', 'resnet_v2')).modelId).toBe('resnet_v2');
  });

  it('anything else is read by parseModelRef, including the undecidable first promotion', () => {
    expect(resolveModelRef('resnet_v2', undefined, known('resnet'))).toEqual({
      modelId: 'resnet',
      version: 'v2',
    });
    expect(resolveModelRef('resnet_v2', undefined, known())).toEqual({ modelId: 'resnet', version: 'v2' });
    expect(resolveModelRef('resnet_v2_v8', undefined, known('resnet_v2'))).toEqual({
      modelId: 'resnet_v2',
      version: 'v8',
    });
  });

  it('for any reference and any set of known models: exactly-known wins, otherwise parseModelRef', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z]{1,6}(_v\d{1,3}){0,2}$/),
        fc.option(fc.stringMatching(/^v\d{1,3}$/), { nil: undefined }),
        fc.array(fc.stringMatching(/^[a-z]{1,6}(_v\d{1,3}){0,2}$/), { maxLength: 5 }),
        (ref, version, ids) => {
          const resolved = resolveModelRef(ref, version, (id) => ids.includes(id));
          if (ids.includes(ref)) expect(resolved).toEqual({ modelId: ref, version });
          else expect(resolved).toEqual(parseModelRef(ref, version));
        },
      ),
    );
  });
});

describe('configKeyFor: one canonical derivation', () => {
  it('is the model id by default', () => {
    expect(configKeyFor('hex8_2p')).toBe('hex8_2p');
  });

  it("the seed's derivations cannot happen: no 'canonical_hex8', no '', no truncation", () => {
    // The seed took the first two "_"-separated tokens: canonical_hex8_2p -> canonical_hex8, hex8 -> "".
    expect(configKeyFor(parseModelRef('canonical_hex8_2p').modelId)).toBe('canonical_hex8_2p');
    expect(configKeyFor(parseModelRef('canonical_hex8_2p_v3').modelId)).toBe('canonical_hex8_2p');
    expect(configKeyFor(parseModelRef('hex8').modelId)).toBe('hex8');
    expect(configKeyFor(parseModelRef('square8_2p_v42').modelId)).toBe('square8_2p');
    expect(configKeyFor(parseModelRef('hexagonal_19_4p_large_v2').modelId)).toBe('hexagonal_19_4p_large');
  });

  it('the event names it, else the configuration overrides it, else the model id', () => {
    const overrides = { canonical_hex8_2p: { configKey: 'hex8_2p' }, square8_2p: {} };
    expect(configKeyFor('canonical_hex8_2p', overrides, 'from_event')).toBe('from_event');
    expect(configKeyFor('canonical_hex8_2p', overrides)).toBe('hex8_2p');
    expect(configKeyFor('square8_2p', overrides)).toBe('square8_2p');
    expect(configKeyFor('other', overrides)).toBe('other');
    expect(configKeyFor('other', overrides, 'from_event')).toBe('from_event');
  });

  it('for any token model id without an override it is the model id itself: never empty, never truncated', () => {
    fc.assert(
      fc.property(fc.stringMatching(TOKEN_PATTERN), (modelId) => {
        const key = configKeyFor(modelId);
        expect(key).toBe(modelId);
        expect(isToken(key)).toBe(true);
      }),
    );
  });
});

describe('token validation', () => {
  it.each(['hex8_2p', 'canonical_hex8_2p', 'a', 'A-b_9', 'x'.repeat(128)])('%j is a token', (value) => {
    expect(isToken(value)).toBe(true);
  });

  it.each(['', 'hex8.2p', 'hex8 2p', 'hex8*', 'hex8>', 'x'.repeat(129), 'modèle', 'a/b', 'hex8_2p\n'])(
    '%j is not a token (it could not be one NATS subject token)',
    (value) => {
      expect(isToken(value)).toBe(false);
    },
  );
});

describe('every component derives the same key: through the facade', () => {
  let dir: string | undefined;
  let warden: Warden | undefined;

  afterEach(async () => {
    await warden?.stop();
    warden = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function start(models: Record<string, { configKey?: string }> = {}): Promise<Warden> {
    dir = mkdtempSync(join(tmpdir(), 'warden-model-ref-'));
    warden = await createWarden(parseConfig({ dataDir: dir, models }), { clock: new ManualClock() });
    return warden;
  }

  it('a promotion of "canonical_hex8_2p_v3" is model canonical_hex8_2p, version v3, config canonical_hex8_2p', async () => {
    const w = await start();
    const result = await w.promote({ model_id: 'canonical_hex8_2p_v3' });
    await w.idle();
    expect(result).toMatchObject({ model_id: 'canonical_hex8_2p', version: 'v3' });
    expect(w.status('canonical_hex8_2p').models[0]).toMatchObject({
      model_id: 'canonical_hex8_2p',
      config_key: 'canonical_hex8_2p',
      production_version: 'v3',
    });
  });

  it('the configuration override and the event field are honoured, in that order of precedence', async () => {
    const w = await start({ canonical_hex8_2p: { configKey: 'hex8_2p' } });
    await w.promote({ model_id: 'canonical_hex8_2p', version: 'v1' });
    await w.promote({ model_id: 'square8_2p_v42', version: 'v42', config_key: 'square8_shared' });
    await w.idle();
    expect(w.status().models.map((m) => [m.model_id, m.config_key, m.production_version])).toEqual([
      ['canonical_hex8_2p', 'hex8_2p', 'v1'],
      ['square8_2p', 'square8_shared', 'v42'],
    ]);
  });

  it('issue 8 finding 4: "resnet_v2" promoted with version v7 is one model for evaluations, commands and reads', async () => {
    const w = await start();
    await w.promote({ model_id: 'resnet_v2', version: 'v6', elo: 1500 });
    const promoted = await w.promote({ model_id: 'resnet_v2', version: 'v7', elo: 1510 });
    expect(promoted).toMatchObject({ model_id: 'resnet_v2', version: 'v7' });
    // Today's main read this as model "resnet", version "v2", and refused it as an unknown model.
    const evaluated = await w.evaluate({ model_id: 'resnet_v2', current_elo: 1505, games_played: 100 });
    expect(evaluated).toMatchObject({ model_id: 'resnet_v2', outcome: { kind: 'healthy' } });
    // The bus path checks the subject's token with the same reading.
    const ingested = await w.ingest('warden.in.evaluation.resnet_v2', {
      model_id: 'resnet_v2',
      current_elo: 1505,
      games_played: 100,
    });
    expect(ingested).toMatchObject({ ok: true, result: { model_id: 'resnet_v2' } });
    expect(w.status('resnet_v2').models[0]).toMatchObject({
      model_id: 'resnet_v2',
      production_version: 'v7',
    });
    const rolled = await w.rollback('resnet_v2', { by: 'alice', reason: 'test', to_version: 'v6' });
    expect(rolled.outcome.kind).toBe('rollback_started');
    await w.idle();
    expect(w.status().models.map((m) => m.model_id)).toEqual(['resnet_v2']);
  });

  it('a known "resnet_v2" without a version field is refused as a promotion, saying why', async () => {
    const w = await start();
    await w.promote({ model_id: 'resnet_v2', version: 'v7' });
    await expect(w.promote({ model_id: 'resnet_v2' })).rejects.toMatchObject({
      code: 'invalid_input',
      issues: [expect.stringContaining('"resnet_v2" is a known model, so its suffix is part of its id')],
    });
  });

  it('commands and paths name a model: a versioned reference of a known model is refused with the reading', async () => {
    const w = await start();
    await w.promote({ model_id: 'hex8_2p', version: 'v42' });
    expect(() => w.status('hex8_2p_v42')).toThrow(
      expect.objectContaining({
        code: 'invalid_input',
        issues: [expect.stringContaining('reads as model "hex8_2p" version "v42"')],
      }),
    );
    expect(() => w.status('nothing_v1')).toThrow(expect.objectContaining({ code: 'unknown_model' }));
  });

  it('the undecidable case: a first promotion of "resnet_v2" with no version is model resnet, version v2', async () => {
    const w = await start();
    expect(await w.promote({ model_id: 'resnet_v2' })).toMatchObject({ model_id: 'resnet', version: 'v2' });
  });
});
