import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig, readConfigFile } from '../../src/config/load.ts';
import { ConfigError, WardenError } from '../../src/domain/errors.ts';

/** Runs `fn`, expecting it to throw a ConfigError, and returns that error. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(WardenError);
    expect((error as ConfigError).code).toBe('invalid_config');
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError, but nothing was thrown');
}

/** Every object reachable from `value`, with its path. */
function objectsIn(value: unknown, path = 'config'): Array<[string, object]> {
  if (typeof value !== 'object' || value === null) return [];
  return [
    [path, value],
    ...Object.entries(value).flatMap(([key, child]) => objectsIn(child, `${path}.${key}`)),
  ];
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('defaults', () => {
  it("equal the issue's list", () => {
    const config = parseConfig({});
    expect(config.detection).toEqual({
      mode: 'statistical',
      statistical: { confidence: 0.95, elo0: 0, elo1: -30, alpha: 0.05, beta: 0.05, alphaSpending: 'life' },
      minGames: 50,
      eloDrop: { minor: 20, moderate: 35, severe: 50, critical: 75 },
      winRateDrop: { minor: 0.025, moderate: 0.05, severe: 0.1, critical: 0.15 },
      errorRateSevere: 0.05,
      escalateAt: 2,
      forceActionAt: 3,
      moderateRollbackEloDrop: 30,
    });
    expect(config.cooldownSeconds).toBe(300);
    expect(config.approval).toEqual({ requireForSevere: false, timeoutSeconds: 3600, onTimeout: 'rollback' });
    expect(config.autoRollbackLimit).toEqual({ max: 3, windowSeconds: 86_400 });
    expect(config.training).toEqual({ autoResumeSeconds: null });
    expect(config.models).toEqual({});
    expect(config.http).toEqual({
      port: 8080,
      host: '127.0.0.1',
      operatorTokens: [],
      producerTokens: [],
      viewerTokens: [],
    });
    expect(config.nats.prefix).toBe('warden');
  });

  it('null, an empty object and partial sections all get the same defaults', () => {
    const defaults = parseConfig({});
    expect(parseConfig(null)).toEqual(defaults);
    expect(parseConfig(undefined)).toEqual(defaults);
    expect(parseConfig({ detection: {}, approval: {}, autoRollbackLimit: {} })).toEqual(defaults);
  });

  it('loadConfig with no file and no environment is the defaults', () => {
    expect(loadConfig({})).toEqual(parseConfig({}));
  });

  it('a partial section keeps the defaults of its other fields', () => {
    const config = parseConfig({ detection: { minGames: 200 }, approval: { requireForSevere: true } });
    expect(config.detection.minGames).toBe(200);
    expect(config.detection.eloDrop).toEqual({ minor: 20, moderate: 35, severe: 50, critical: 75 });
    expect(config.approval).toEqual({ requireForSevere: true, timeoutSeconds: 3600, onTimeout: 'rollback' });
  });
});

describe('the result is deeply frozen', () => {
  it('every nested object and array is frozen', () => {
    const config = parseConfig({
      models: { hex8_2p: { configKey: 'hex8' } },
      http: { operatorTokens: ['0123456789abcdef'] },
    });
    const objects = objectsIn(config);
    expect(objects.length).toBeGreaterThanOrEqual(15);
    expect(objects.filter(([, o]) => !Object.isFrozen(o)).map(([path]) => path)).toEqual([]);
  });

  it('writes throw (ES modules are strict) and change nothing', () => {
    const config = parseConfig({ http: { operatorTokens: ['0123456789abcdef'] } });
    expect(() => {
      (config as { cooldownSeconds: number }).cooldownSeconds = 0;
    }).toThrow(TypeError);
    expect(() => {
      (config.detection.eloDrop as { critical: number }).critical = 1;
    }).toThrow(TypeError);
    expect(() => (config.http.operatorTokens as string[]).push('another-token-0123456789')).toThrow(
      TypeError,
    );
    expect(() => {
      (config.models as Record<string, object>).x = {};
    }).toThrow(TypeError);
    expect(config.cooldownSeconds).toBe(300);
    expect(config.detection.eloDrop.critical).toBe(75);
    expect(config.http.operatorTokens).toEqual(['0123456789abcdef']);
  });

  it('freezing one result does not leak into the next: defaults stay intact', () => {
    parseConfig({});
    const second = parseConfig({
      detection: { eloDrop: { minor: 10, moderate: 20, severe: 30, critical: 40 } },
    });
    expect(second.detection.eloDrop).toEqual({ minor: 10, moderate: 20, severe: 30, critical: 40 });
    expect(parseConfig({}).detection.eloDrop).toEqual({ minor: 20, moderate: 35, severe: 50, critical: 75 });
  });
});

describe('a bad configuration lists every problem at once', () => {
  it('several wrong fields give one ConfigError whose issues name each field with expected and received', () => {
    const error = configError(() =>
      parseConfig({
        cooldownSeconds: -1,
        detection: { minGames: 'many' },
        approval: { onTimeout: 'explode' },
        http: { port: 70_000 },
      }),
    );
    expect(error.issues).toMatchInlineSnapshot(`
      [
        "detection.minGames: Invalid input: expected number, received string",
        "approval.onTimeout: Invalid option: expected one of "rollback"|"reject", received "explode"",
        "cooldownSeconds: Too small: expected number to be >=0, received -1",
        "http.port: Too big: expected number to be <=65535, received 70000",
      ]
    `);
    for (const issue of error.issues!) expect(issue).toMatch(/^[\w.]+: .*expected .*received /);
    expect(error.message).toMatch(/^invalid configuration in configuration:\n {2}- /);
    for (const field of ['cooldownSeconds', 'detection.minGames', 'approval.onTimeout', 'http.port']) {
      expect(error.message).toContain(`- ${field}: `);
    }
  });

  it('a non-ascending ladder is rejected (minor = moderate, the seed win-rate bug)', () => {
    const error = configError(() =>
      parseConfig({
        detection: { winRateDrop: { minor: 0.05, moderate: 0.05, severe: 0.1, critical: 0.15 } },
      }),
    );
    expect(error.issues).toHaveLength(1);
    expect(error.issues![0]).toMatch(
      /^detection\.winRateDrop: expected minor < moderate < severe < critical, so that every severity is reachable/,
    );
  });

  it.each([
    [{ minor: 20, moderate: 35, severe: 50, critical: 50 }],
    [{ minor: 50, moderate: 35, severe: 20, critical: 75 }],
    [{ minor: 20, moderate: 35, severe: 34, critical: 75 }],
  ])('an Elo ladder %j is rejected', (eloDrop) => {
    expect(configError(() => parseConfig({ detection: { eloDrop } })).issues![0]).toMatch(
      /^detection\.eloDrop: expected minor < moderate/,
    );
  });

  it('a partial ladder names each missing step', () => {
    const error = configError(() => parseConfig({ detection: { eloDrop: { minor: 20 } } }));
    expect(error.issues).toEqual([
      'detection.eloDrop.moderate: required: expected number, received nothing',
      'detection.eloDrop.severe: required: expected number, received nothing',
      'detection.eloDrop.critical: required: expected number, received nothing',
    ]);
  });

  it('escalateAt after forceActionAt is rejected', () => {
    const error = configError(() => parseConfig({ detection: { escalateAt: 4, forceActionAt: 3 } }));
    expect(error.issues).toEqual([
      'detection.forceActionAt: expected escalateAt <= forceActionAt, received 3',
    ]);
  });

  it.each([
    [
      { detection: { errorRateSevere: 1.5 } },
      /^detection\.errorRateSevere: .*expected number to be <=1, received 1\.5$/,
    ],
    [{ detection: { minGames: 0 } }, /^detection\.minGames: .*expected number to be >0, received 0$/],
    [{ detection: { minGames: 2.5 } }, /^detection\.minGames: .*expected int, received number/],
    [
      { detection: { mode: 'magic' } },
      /^detection\.mode: .*expected one of "threshold"\|"statistical", received "magic"$/,
    ],
    [{ cooldownSeconds: Number.NaN }, /^cooldownSeconds: .*expected number, received NaN$/],
    [
      { approval: { timeoutSeconds: 0 } },
      /^approval\.timeoutSeconds: .*expected number to be >0, received 0$/,
    ],
    [
      { http: { operatorTokens: ['short'] } },
      /^http\.operatorTokens\.0: expected a token of at least 16 characters, received a secret of 5 characters \(not shown\)$/,
    ],
  ])('%j is rejected', (input, issue) => {
    const error = configError(() => parseConfig(input));
    expect(error.issues).toHaveLength(1);
    expect(error.issues![0]).toMatch(issue);
  });

  it('a model id that is not a token is rejected with the expectation and the key received', () => {
    const error = configError(() => parseConfig({ models: { 'hex8 2p': { configKey: 'hex8_2p' } } }));
    expect(error.issues).toHaveLength(1);
    // The schema's own message ("expected a single token ...") must survive, and "received" must be the key.
    expect(error.issues![0]).toMatch(/^models\.hex8 2p: .*expected a single token of letters, digits/);
    expect(error.issues![0]).not.toMatch(/received object/);
  });

  it('unknown keys are rejected, at the top level and in every section', () => {
    const error = configError(() =>
      parseConfig({
        colour: 'blue',
        detection: { eloDrops: { minor: 1 } },
        approval: { requireForSevre: true },
        models: { hex8_2p: { config_key: 'hex8' } },
      }),
    );
    expect(error.issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^colour: unknown field/),
        expect.stringMatching(/^detection\.eloDrops: unknown field/),
        expect.stringMatching(/^approval\.requireForSevre: unknown field/),
        expect.stringMatching(/^models\.hex8_2p\.config_key: unknown field/),
      ]),
    );
    expect(error.issues).toHaveLength(4);
  });

  it('a configuration that is not an object says so', () => {
    expect(configError(() => parseConfig('just a string')).issues).toEqual([
      '(root): Invalid input: expected object, received string',
    ]);
    expect(configError(() => parseConfig([1, 2])).issues).toEqual([
      '(root): Invalid input: expected object, received array',
    ]);
  });
});

describe('files', () => {
  it('loads YAML', () => {
    const path = file(
      'warden.yaml',
      [
        'detection:',
        '  minGames: 200',
        '  eloDrop: { minor: 10, moderate: 20, severe: 30, critical: 40 }',
        'approval:',
        '  requireForSevere: true',
        '  onTimeout: reject',
        'cooldownSeconds: 60',
        'models:',
        '  canonical_hex8_2p:',
        '    configKey: hex8_2p',
        '',
      ].join('\n'),
    );
    const config = loadConfig({}, path);
    expect(config.detection.minGames).toBe(200);
    expect(config.detection.eloDrop).toEqual({ minor: 10, moderate: 20, severe: 30, critical: 40 });
    expect(config.approval).toEqual({ requireForSevere: true, timeoutSeconds: 3600, onTimeout: 'reject' });
    expect(config.cooldownSeconds).toBe(60);
    expect(config.models).toEqual({ canonical_hex8_2p: { configKey: 'hex8_2p' } });
    expect(Object.isFrozen(config.models.canonical_hex8_2p)).toBe(true);
  });

  it('loads JSON, and .yml through WARDEN_CONFIG', () => {
    const json = file(
      'warden.json',
      JSON.stringify({ dataDir: '/var/lib/warden', autoRollbackLimit: { max: 1 } }),
    );
    const fromJson = loadConfig({}, json);
    expect(fromJson.dataDir).toBe('/var/lib/warden');
    expect(fromJson.autoRollbackLimit).toEqual({ max: 1, windowSeconds: 86_400 });

    const yml = file('warden.yml', 'dataDir: /srv/warden\n');
    expect(loadConfig({ WARDEN_CONFIG: yml }).dataDir).toBe('/srv/warden');
  });

  it('an empty file is the defaults', () => {
    expect(loadConfig({}, file('empty.yaml', ''))).toEqual(parseConfig({}));
  });

  it('an invalid file names the file and every problem', () => {
    const path = file('bad.yaml', 'cooldownSeconds: soon\ndetection:\n  minGames: -5\n');
    const error = configError(() => loadConfig({}, path));
    expect(error.message).toContain(`invalid configuration in ${path} and the environment`);
    expect(error.issues).toEqual([
      'detection.minGames: Too small: expected number to be >0, received -5',
      'cooldownSeconds: Invalid input: expected number, received string',
    ]);
  });

  it('an unreadable file gives a clear error naming the path', () => {
    const missing = join(dir, 'missing.yaml');
    const error = configError(() => loadConfig({}, missing));
    expect(error.issues).toHaveLength(1);
    expect(error.issues![0]).toMatch(/^cannot read the file: ENOENT/);
    expect(error.message).toContain(`invalid configuration in ${missing}`);

    expect(configError(() => readConfigFile(dir)).issues![0]).toMatch(/^cannot read the file: EISDIR/);
  });

  it('unparsable YAML and JSON give clear errors', () => {
    const yaml = file('broken.yaml', 'detection: [unclosed\n');
    const yamlError = configError(() => loadConfig({}, yaml));
    expect(yamlError.issues![0]).toMatch(/^expected YAML or JSON, could not parse: .*line 2, column 1/);
    expect(yamlError.message).toContain(yaml);

    const json = file('broken.json', '{"dataDir": ');
    expect(configError(() => loadConfig({}, json)).issues![0]).toMatch(
      /^expected YAML or JSON, could not parse: /,
    );
  });

  it('a YAML file that is not a mapping is a ConfigError, with or without environment overrides', () => {
    const path = file('scalar.yaml', 'just a string\n');
    expect(configError(() => loadConfig({}, path)).issues).toEqual([
      '(root): Invalid input: expected object, received string',
    ]);
    // An override must not turn a bad file into a TypeError ("Cannot create property 'dataDir' on string").
    expect(configError(() => loadConfig({ WARDEN_DATA_DIR: '/data' }, path)).issues).toEqual([
      '(root): Invalid input: expected object, received string',
    ]);
  });
});

describe('environment variables override the file', () => {
  it('WARDEN_DATA_DIR, WARDEN_COOLDOWN_SECONDS, WARDEN_REQUIRE_APPROVAL_FOR_SEVERE, WARDEN_OPERATOR_TOKENS', () => {
    const path = file(
      'warden.yaml',
      [
        'dataDir: /from/file',
        'cooldownSeconds: 600',
        'approval:',
        '  requireForSevere: false',
        '  timeoutSeconds: 120',
        'http:',
        '  port: 9000',
        '  operatorTokens: [file-token-0123456789]',
        '',
      ].join('\n'),
    );
    const config = loadConfig({
      WARDEN_CONFIG: path,
      WARDEN_DATA_DIR: '/from/env',
      WARDEN_COOLDOWN_SECONDS: '60',
      WARDEN_REQUIRE_APPROVAL_FOR_SEVERE: 'true',
      WARDEN_OPERATOR_TOKENS: ' alpha-token-0123456789 ,beta-token-0123456789,, ',
    });
    expect(config.dataDir).toBe('/from/env');
    expect(config.cooldownSeconds).toBe(60);
    expect(config.approval).toEqual({ requireForSevere: true, timeoutSeconds: 120, onTimeout: 'rollback' });
    expect(config.http.operatorTokens).toEqual(['alpha-token-0123456789', 'beta-token-0123456789']);
    // Fields the environment does not name keep the file's value.
    expect(config.http.port).toBe(9000);
    expect(Object.isFrozen(config.http.operatorTokens)).toBe(true);
  });

  it('overrides the defaults when there is no file', () => {
    const config = loadConfig({ WARDEN_DATA_DIR: '/env/only', WARDEN_COOLDOWN_SECONDS: '0' });
    expect(config.dataDir).toBe('/env/only');
    expect(config.cooldownSeconds).toBe(0);
  });

  it('an empty variable is ignored', () => {
    const path = file('warden.yaml', 'dataDir: /from/file\ncooldownSeconds: 42\n');
    const config = loadConfig({ WARDEN_DATA_DIR: '', WARDEN_COOLDOWN_SECONDS: '' }, path);
    expect(config.dataDir).toBe('/from/file');
    expect(config.cooldownSeconds).toBe(42);
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['0', false],
    ['No', false],
  ])('WARDEN_REQUIRE_APPROVAL_FOR_SEVERE=%s is %s', (raw, expected) => {
    const path = file('warden.yaml', `approval:\n  requireForSevere: ${String(!expected)}\n`);
    expect(loadConfig({ WARDEN_REQUIRE_APPROVAL_FOR_SEVERE: raw }, path).approval.requireForSevere).toBe(
      expected,
    );
  });

  it('bad values from the environment are validated like the file, all at once', () => {
    const error = configError(() =>
      loadConfig({
        WARDEN_COOLDOWN_SECONDS: 'soon',
        WARDEN_REQUIRE_APPROVAL_FOR_SEVERE: 'maybe',
        WARDEN_OPERATOR_TOKENS: 'short',
      }),
    );
    expect(error.message).toContain('invalid configuration in the environment');
    expect(error.issues).toEqual([
      'approval.requireForSevere: Invalid input: expected boolean, received string',
      'cooldownSeconds: Invalid input: expected number, received string',
      'http.operatorTokens.0: expected a token of at least 16 characters, received a secret of 5 characters (not shown)',
    ]);
  });
});

describe('secrets never appear, and a configuration that can never work is refused (issue 8, finding 8)', () => {
  it('a short token is refused without being printed, from the environment and from a file', () => {
    const fromEnv = configError(() => loadConfig({ WARDEN_OPERATOR_TOKENS: 'hunter2' }));
    expect(fromEnv.message).not.toContain('hunter2');
    expect(fromEnv.issues).toEqual([
      'http.operatorTokens.0: expected a token of at least 16 characters, received a secret of 7 characters (not shown)',
    ]);
    const path = file('warden.yaml', 'http:\n  producerTokens: ["hunter2"]\nnats:\n  user: warden\n');
    const fromFile = configError(() => loadConfig({}, path));
    expect(fromFile.message).not.toContain('hunter2');
  });

  it('a token with whitespace inside could never authenticate: refused at start-up, not printed', () => {
    const error = configError(() => loadConfig({ WARDEN_OPERATOR_TOKENS: 'correct horse battery staple' }));
    expect(error.message).not.toContain('horse');
    expect(error.issues).toEqual([
      'http.operatorTokens.0: expected a token of printable ASCII without spaces or control characters (it travels in an HTTP header), received a secret of 28 characters (not shown)',
    ]);
    expect(() => parseConfig({ http: { operatorTokens: ['tab\tinside-0123456789'] } })).toThrow(ConfigError);
    expect(() => parseConfig({ http: { operatorTokens: ['é-accented-0123456789'] } })).toThrow(ConfigError);
  });

  it('a token in both lists, a user without a password, a webhook that is not http(s): refused, secrets hidden', () => {
    const token = 'same-token-0123456789';
    const error = configError(() =>
      parseConfig({
        http: { operatorTokens: [token], producerTokens: [token] },
        nats: { url: 'nats://127.0.0.1:4222', user: 'warden' },
        alerts: { webhookUrl: 'ftp://hooks.example/T000/B000/s3cr3t' },
      }),
    );
    expect(error.issues).toEqual([
      'nats.pass: expected nats.user and nats.pass together: one without the other can never authenticate, received nothing',
      'http.producerTokens: expected a token in one list only: a token that is both operator and producer is ambiguous, received array',
      'alerts.webhookUrl: expected an http:// or https:// URL, received a secret of 36 characters (not shown)',
    ]);
    expect(error.message).not.toMatch(/same-token|s3cr3t/);
  });

  it('viewer tokens are secrets too, and a viewer token may not also be an operator or producer token', () => {
    const short = configError(() => loadConfig({ WARDEN_VIEWER_TOKENS: 'peek' }));
    expect(short.message).not.toContain('peek');
    const shared = 'shared-token-0123456789';
    const both = configError(() =>
      parseConfig({ http: { operatorTokens: [shared], viewerTokens: [shared] } }),
    );
    expect(both.issues).toEqual([
      'http.viewerTokens: expected a token in one list only: a viewer token that is also an operator or producer token is ambiguous, received array',
    ]);
  });

  it('a NATS URL that can never connect is refused without printing it (it may hold a password)', () => {
    for (const url of ['http://warden:pw@127.0.0.1:4222', 'not a url', 'nats://', ' , ']) {
      const error = configError(() => loadConfig({ WARDEN_NATS_URL: url }));
      expect(error.issues).toEqual([
        expect.stringMatching(
          /^nats\.url: expected nats:\/\/host:port or tls:\/\/host:port \(several separated by commas\), received a secret of \d+ characters \(not shown\)$/,
        ),
      ]);
      expect(error.message).not.toContain('pw@');
    }
    for (const url of ['nats://127.0.0.1:4222', '127.0.0.1:4222', 'nats://a:1,tls://u:p@b:2', 'localhost']) {
      expect(loadConfig({ WARDEN_NATS_URL: url }).nats.url).toBe(url);
    }
  });
});
