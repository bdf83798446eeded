import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/actors/manual-clock.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/logger.ts';
import { createWarden } from '../../src/warden.ts';

/** A destination stream that keeps what it was given, and may claim to be a terminal. */
function sink(isTTY: boolean): Writable & { text: () => string; isTTY: boolean } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return Object.assign(stream, { isTTY, text: () => chunks.join('') });
}

describe('logs (what `warden start` writes)', () => {
  it('are JSON lines when not writing to a terminal, with one child logger per actor and transitions as {from, to, event}', async () => {
    const out = sink(false);
    const dir = mkdtempSync(join(tmpdir(), 'warden-log-'));
    const warden = await createWarden(parseConfig({ dataDir: dir }), {
      clock: new ManualClock(),
      logger: createLogger({ level: 'info' }, out),
    });
    try {
      await warden.promote({ model_id: 'hex8_2p', version: 'v1', elo: 1500 });
      await warden.promote({ model_id: 'hex8_2p', version: 'v2', elo: 1520 });
      await warden.evaluate({ model_id: 'hex8_2p', current_elo: 1400, games_played: 100 });
      await warden.idle();
    } finally {
      await warden.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    const lines = out
      .text()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({
        modelId: 'hex8_2p',
        from: 'healthy',
        to: 'rollingBack',
        event: 'EVALUATED',
        msg: 'transition',
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({
        configKey: 'hex8_2p',
        from: 'running',
        to: 'paused',
        event: 'PAUSE',
        msg: 'transition',
      }),
    );
  });

  it('are pretty, not JSON, in a terminal', () => {
    const out = sink(true);
    createLogger({ level: 'info' }, out).info(
      { from: 'healthy', to: 'regressed', event: 'EVALUATED' },
      'transition',
    );
    // Colours on; strip them to read the text.
    const text = out.text().replace(new RegExp(`${String.fromCharCode(27)}\\[\\d+m`, 'g'), '');
    expect(text).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: transition\n {4}from: "healthy"\n {4}to: "regressed"\n {4}event: "EVALUATED"\n$/,
    );
    expect(() => JSON.parse(text)).toThrow();
  });
});
