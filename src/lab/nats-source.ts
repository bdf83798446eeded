/**
 * NATS mode's recorded history: the WARDEN_IN stream (`<prefix>.in.>`), read with an ordered consumer
 * from its first message (or from a time) up to the last one when the read starts. An input's time is the
 * time the stream took it. Nothing is acknowledged or changed: the service's own consumers are untouched.
 */
import { jetstream, jetstreamManager, DeliverPolicy } from '@nats-io/jetstream';
import type { Config } from '../config/schema.ts';
import { connectionOptions } from '../nats/connection.ts';
import { natsNames } from '../nats/names.ts';
import { connect } from '@nats-io/transport-node';
import type { JournalEntry } from '../embedded/input-journal.ts';

/** How long to wait for the next message before deciding the stream has no more (ms). */
const EXPIRES_MS = 2_000;

export async function readInputStream(
  config: Config,
  options: { from?: number | undefined } = {},
): Promise<{ entries: JournalEntry[]; stream: string }> {
  const nc = await connect({ ...connectionOptions(config.nats, 'warden-replay'), maxReconnectAttempts: 0 });
  try {
    const names = natsNames(config.nats.prefix);
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(names.inputStream);
    const last = info.state.last_seq;
    const entries: JournalEntry[] = [];
    if (info.state.messages === 0) return { entries, stream: names.inputStream };
    const js = jetstream(nc);
    const consumer = await js.consumers.get(
      names.inputStream,
      options.from === undefined
        ? { deliver_policy: DeliverPolicy.All }
        : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(options.from).toISOString() },
    );
    const prefix = `${config.nats.prefix}.in.`;
    for (;;) {
      const batch = await consumer.fetch({ max_messages: 1000, expires: EXPIRES_MS });
      let got = 0;
      let done = false;
      for await (const m of batch) {
        got++;
        const kind = m.subject.startsWith(prefix) ? m.subject.slice(prefix.length).split('.')[0]! : m.subject;
        entries.push({
          seq: m.seq,
          at: Math.round(Number(m.info.timestampNanos) / 1e6),
          kind,
          payload: m.string(),
        });
        if (m.seq >= last) done = true;
      }
      if (done || got === 0) break;
    }
    return { entries, stream: names.inputStream };
  } finally {
    await nc.close();
  }
}
