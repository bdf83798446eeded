import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { interpolate } from './compose-env.ts';

const root = (file: string) => fileURLToPath(new URL(`../../${file}`, import.meta.url));
const conf = readFileSync(root('nats.conf'), 'utf8');
const composeText = readFileSync(root('docker-compose.yml'), 'utf8');
const dockerfile = readFileSync(root('Dockerfile'), 'utf8');
/** The environment variables nats.conf reads (`$NAME` after `password:`). */
const confVariables = [...new Set([...conf.matchAll(/password:\s*\$(\w+)/g)].map((m) => m[1]!))].sort();
const PASSWORDS = Object.fromEntries(confVariables.map((name) => [name, `x-${name.toLowerCase()}`]));
const TOKENS = {
  WARDEN_OPERATOR_TOKENS: 'operator-token-0123456789',
  WARDEN_PRODUCER_TOKENS: 'producer-token-0123456789',
};

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
}
const compose = parse(composeText) as { services: Record<string, Service> };

function checkConf(env: Record<string, string>): { status: number | null; output: string } {
  const run = spawnSync('nats-server', ['-t', '-c', root('nats.conf')], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
  });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** The users' blocks of nats.conf, by user name: what each may publish and subscribe to. */
function users(): Map<string, { publish: string[]; subscribe: string[] }> {
  const result = new Map<string, { publish: string[]; subscribe: string[] }>();
  for (const block of conf.split(/\n\s*\{\s*\n\s*user: /).slice(1)) {
    const name = block.split('\n')[0]!.trim();
    const list = (key: string) => {
      const section = block.match(new RegExp(`${key}: \\{\\s*allow: \\[([^\\]]*)\\]`))?.[1] ?? '';
      return [...section.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
    };
    result.set(name, { publish: list('publish'), subscribe: list('subscribe') });
  }
  return result;
}

describe('nats.conf', () => {
  it('is valid once its passwords are set, and refuses to start without them', () => {
    expect(confVariables).toEqual([
      'OPERATOR_NATS_PASSWORD',
      'PRODUCER_NATS_PASSWORD',
      'TRAINER_NATS_PASSWORD',
      'WARDEN_NATS_PASSWORD',
    ]);
    const valid = checkConf(PASSWORDS);
    expect(valid.status, valid.output).toBe(0);
    const missing = checkConf({});
    expect(missing.status).not.toBe(0);
    expect(missing.output).toContain('WARDEN_NATS_PASSWORD');
  });

  it('starts with any password of the documented form (a letter, then letters, digits, "-" or "_", with a "-")', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,8}-[A-Za-z0-9_-]{0,40}$/), (password) => {
        const run = checkConf({ ...PASSWORDS, WARDEN_NATS_PASSWORD: password });
        expect(run.status, `${password}: ${run.output}`).toBe(0);
      }),
      { numRuns: 25 },
    );
  });

  it('does not start with the passwords the docs warn about (read as numbers or booleans)', () => {
    for (const password of ['12345678', 'true', 'yes', 'off', '10MB', '1e5abc', 'two words']) {
      const run = checkConf({ ...PASSWORDS, TRAINER_NATS_PASSWORD: password });
      expect(run.status, password).not.toBe(0);
    }
    const docs = readFileSync(root('docs/deployment.md'), 'utf8');
    expect(docs).toMatch(/numbers? or (a )?booleans?/);
    expect(conf).toMatch(/number or a boolean/);
  });

  it('gives each user its own reply inboxes, and the service named JetStream API verbs only', () => {
    const byUser = users();
    expect([...byUser.keys()]).toEqual(['warden', 'producer', 'operator', 'trainer']);
    for (const name of ['producer', 'operator', 'trainer']) {
      const { subscribe, publish } = byUser.get(name)!;
      expect(subscribe).toContain(`_INBOX_${name}.>`);
      expect(subscribe.filter((s) => s.startsWith('_INBOX'))).toEqual([`_INBOX_${name}.>`]);
      expect(publish.some((s) => s === '$JS.API.>' || s === '>' || s.endsWith('.DELETE.>'))).toBe(false);
    }
    const warden = byUser.get('warden')!;
    expect(warden.subscribe).toEqual(['warden.cmd.>', 'warden.fwd.>', '_INBOX.>']);
    // No blanket grant, and nothing that deletes or purges a stream.
    for (const subject of warden.publish) {
      expect(subject).not.toMatch(/^\$JS\.API\.(>|\*|STREAM\.>|CONSUMER\.>)$/);
      expect(subject).not.toMatch(/STREAM\.(DELETE|PURGE)/);
      // "*" only as a whole token (NATS matches nothing else).
      for (const token of subject.split('.')) expect(token === '*' || !token.includes('*')).toBe(true);
    }
  });
});

describe('docker-compose.yml', () => {
  it('publishes every port on 127.0.0.1 only', () => {
    const ports = Object.values(compose.services).flatMap((s) => s.ports ?? []);
    expect(ports.length).toBeGreaterThan(0);
    for (const port of ports) expect(port).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('refuses to start without each password and token, and has no default secret', () => {
    expect(composeText).not.toMatch(/change-me/);
    const secrets = [...confVariables, 'WARDEN_OPERATOR_TOKENS', 'WARDEN_PRODUCER_TOKENS'];
    const all = { ...PASSWORDS, ...TOKENS };
    expect(interpolate(composeText, all).errors).toEqual([]);
    for (const name of secrets) {
      for (const value of [undefined, '']) {
        const { errors } = interpolate(composeText, { ...all, [name]: value });
        expect(errors.length, name).toBeGreaterThan(0);
        expect(errors.every((e) => e.startsWith(`${name}: set ${name}`))).toBe(true);
      }
    }
    // Every reference to a secret is of the refusing kind.
    for (const name of secrets) {
      for (const m of composeText.matchAll(new RegExp(`\\$\\{${name}([^}]*)\\}`, 'g')))
        expect(m[1], name).toMatch(/^:\?/);
    }
  });

  it('runs NATS with nats.conf and a JetStream volume, and Warden from the Dockerfile in NATS mode with tokens', () => {
    const resolved = parse(interpolate(composeText, { ...PASSWORDS, ...TOKENS }).value) as {
      services: Record<string, Service>;
    };
    const nats = resolved.services.nats!;
    expect(nats.volumes).toContain('./nats.conf:/etc/nats/nats.conf:ro');
    expect(nats.command).toEqual(expect.arrayContaining(['-c', '/etc/nats/nats.conf', '-sd']));
    expect(Object.keys(nats.environment ?? {}).sort()).toEqual(confVariables);
    expect(nats.environment).toEqual(PASSWORDS);
    const warden = resolved.services.warden!;
    expect(warden.build).toBe('.');
    expect(warden.environment).toMatchObject({
      WARDEN_NATS_URL: `nats://warden:${PASSWORDS.WARDEN_NATS_PASSWORD}@nats:4222`,
      WARDEN_OPERATOR_TOKENS: TOKENS.WARDEN_OPERATOR_TOKENS,
      WARDEN_PRODUCER_TOKENS: TOKENS.WARDEN_PRODUCER_TOKENS,
      WARDEN_ALERT_WEBHOOK_URL: '',
    });
  });
});

describe('Dockerfile', () => {
  const stages = dockerfile.split(/^FROM /m).slice(1);

  it('compiles in a build stage and runs the compiled service on Node 22 LTS', () => {
    expect(stages).toHaveLength(2);
    expect(stages[0]).toMatch(/^node:22-bookworm AS build/);
    expect(stages[0]).toContain('RUN npm run build && npm prune --omit=dev');
    expect(stages[1]).toMatch(/^node:22-bookworm-slim\n/);
    expect(stages[1]).toContain('COPY --from=build /app/dist ./dist');
    expect(stages[1]).toContain('CMD ["node", "dist/main.js"]');
    expect(stages[1]).not.toMatch(/tsx|src\//);
    expect(stages[1]).toMatch(/^USER node$/m);
  });

  it('puts the CLI on PATH as `warden` and checks health on /readyz', () => {
    expect(stages[1]).toContain(`exec node /app/dist/cli/bin.js "$@"`);
    expect(stages[1]).toContain('> /usr/local/bin/warden');
    const healthcheck = dockerfile.match(/^HEALTHCHECK (.*?)\\\n\s+CMD (\[.*\])$/m);
    expect(healthcheck).not.toBeNull();
    // Exec form: JSON, or Docker silently runs it through a shell that the slim image may lack.
    const command = JSON.parse(healthcheck![2]!) as string[];
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    expect(command[2]).toContain('/readyz');
  });

  it('.dockerignore keeps what the build needs out of the ignore list', () => {
    const ignored = readFileSync(root('.dockerignore'), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    for (const needed of ['src', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'])
      expect(ignored).not.toContain(needed);
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.env', 'data']));
  });
});
