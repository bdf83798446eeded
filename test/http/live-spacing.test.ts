import type { ServerResponse } from 'node:http';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createChangeFeed, createLiveHub } from '../../src/http/live.ts';
import type { Warden } from '../../src/warden.ts';

/** A Warden whose full status read costs `cost` ms of the injected clock, counting the reads. */
function slowWarden(clock: { now: number; cost: number; reads: number }): Warden {
  return {
    prefix: 'warden',
    bus: { subscribe: () => () => undefined },
    status: () => {
      clock.reads++;
      clock.now += clock.cost;
      return { models: [], training: [] };
    },
    trainingStatus: () => ({}),
  } as unknown as Warden;
}

function client(): ServerResponse {
  return {
    writeHead: () => undefined,
    write: () => true,
    on: () => undefined,
    end: () => undefined,
    writableLength: 0,
  } as unknown as ServerResponse;
}

describe('the live view', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('spaces its full comparison out to 20 times as long as the last one took, never closer than fullEveryMs', () => {
    const clock = { now: 0, cost: 10, reads: 0 };
    const hub = createLiveHub(slowWarden(clock), pino({ level: 'silent' }), {
      changes: createChangeFeed(),
      fullEveryMs: 5_000,
      heartbeatMs: 60_000,
      now: () => clock.now,
    });
    try {
      hub.attach(client());
      expect(clock.reads).toBe(1); // the first look, as the first client arrives
      vi.advanceTimersByTime(5_000);
      expect(clock.reads).toBe(2);
      vi.advanceTimersByTime(5_000);
      expect(clock.reads).toBe(3);
      // A million models: a comparison takes a second; the next waits 20 s, not 5.
      clock.cost = 1_000;
      vi.advanceTimersByTime(5_000);
      expect(clock.reads).toBe(4);
      vi.advanceTimersByTime(19_999);
      expect(clock.reads).toBe(4);
      vi.advanceTimersByTime(1);
      expect(clock.reads).toBe(5);
      // Quick again: back to every 5 s (after the 20 s the slow one asked for).
      clock.cost = 10;
      vi.advanceTimersByTime(20_000);
      expect(clock.reads).toBe(6);
      vi.advanceTimersByTime(5_000);
      expect(clock.reads).toBe(7);
    } finally {
      hub.close();
    }
  });
});
