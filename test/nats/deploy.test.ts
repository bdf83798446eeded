import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = (file: string) => fileURLToPath(new URL(`../../${file}`, import.meta.url));
const conf = readFileSync(root('nats.conf'), 'utf8');
/** The environment variables nats.conf reads (`$NAME`, outside quoted subjects). */
const confVariables = [...new Set([...conf.matchAll(/password:\s*\$(\w+)/g)].map((m) => m[1]!))];

interface Compose {
  services: Record<
    string,
    {
      image?: string;
      build?: string;
      command?: string[];
      environment?: Record<string, string>;
      volumes?: string[];
    }
  >;
}

describe('deployment files', () => {
  it('nats.conf is a valid nats-server configuration once its passwords are set, and not before', () => {
    expect(confVariables.sort()).toEqual([
      'OPERATOR_NATS_PASSWORD',
      'PRODUCER_NATS_PASSWORD',
      'TRAINER_NATS_PASSWORD',
      'WARDEN_NATS_PASSWORD',
    ]);
    const env = Object.fromEntries(confVariables.map((name) => [name, `${name.toLowerCase()}-test`]));
    const valid = spawnSync('nats-server', ['-t', '-c', root('nats.conf')], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    expect(valid.status, valid.stderr).toBe(0);
    const missing = spawnSync('nats-server', ['-t', '-c', root('nats.conf')], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
    });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('WARDEN_NATS_PASSWORD');
  });

  it('docker-compose.yml runs NATS with nats.conf and a JetStream volume, and Warden from the Dockerfile in NATS mode', () => {
    const compose = parse(readFileSync(root('docker-compose.yml'), 'utf8')) as Compose;
    const nats = compose.services.nats!;
    expect(nats.volumes).toContain('./nats.conf:/etc/nats/nats.conf:ro');
    expect(nats.command).toEqual(expect.arrayContaining(['-c', '/etc/nats/nats.conf', '-sd']));
    expect(Object.keys(nats.environment ?? {}).sort()).toEqual(confVariables.sort());
    const warden = compose.services.warden!;
    expect(warden.build).toBe('.');
    expect(warden.environment?.WARDEN_NATS_URL).toMatch(
      /^nats:\/\/warden:\$\{WARDEN_NATS_PASSWORD:-[^}]+\}@nats:4222$/,
    );
  });

  it('the Dockerfile starts src/main.ts, and .dockerignore keeps what it copies', () => {
    const dockerfile = readFileSync(root('Dockerfile'), 'utf8');
    expect(dockerfile).toContain('CMD ["node", "--import", "tsx", "src/main.ts"]');
    const ignored = readFileSync(root('.dockerignore'), 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '' && !line.startsWith('#'));
    for (const needed of ['src', 'package.json', 'package-lock.json', 'tsconfig.json'])
      expect(ignored).not.toContain(needed);
  });
});
