/**
 * NATS mode's recorded history: the WARDEN_IN stream (`<prefix>.in.>`, and with input partitions
 * `<prefix>.part.<k>.>`), read with an ordered consumer from its first message (or from a time) up to the
 * last one when the read starts. An input's time is the time the stream took it. Nothing is acknowledged or
 * changed: the service's own consumers are untouched. An input Warden moved to its partition (no server
 * mapping) is in the stream twice: the original is read, the moved copy is not.
 */
import { jetstream, jetstreamManager, DeliverPolicy } from '@nats-io/jetstream';
import type { Config } from '../config/schema.ts';
import { connectionOptions } from '../nats/connection.ts';
import { natsNames } from '../nats/names.ts';
import { MOVED_MSG_ID, unpartition } from '../nats/partitions-map.ts';
import { connect } from '@nats-io/transport-node';
import type { JournalEntry } from '../embedded/input-journal.ts';

/**
 * The input kind of a stored subject, read from the producer's subject (`<prefix>.in.<kind>.<model>`, also
 * for an input the server mapped to `<prefix>.part.<k>.>`); any other subject is returned whole, so that
 * the replay reports it as an unknown kind.
 */
function inputKind(prefix: string): (subject: string) => string {
  const direct = `${prefix}.in.`;
  return (stored) => {
    const subject = unpartition(prefix, stored)?.subject ?? stored;
    return subject.startsWith(direct) ? subject.slice(direct.length).split('.')[0]! : stored;
  };
}

/** How long to wait for the next message before deciding the stream has no more (ms). */
const EXPIRES_MS = 2_000;

/**
 * The stream's entries, in order, as they are fetched (a thousand at a time): the stream is never held
 * whole. The connection closes when the entries end or their reader stops.
 */
export async function inputStreamEntries(
  config: Config,
  options: { from?: number | undefined } = {},
): Promise<{ entries: AsyncIterable<JournalEntry>; stream: string }> {
  const nc = await connect({ ...connectionOptions(config.nats, 'warden-replay'), maxReconnectAttempts: 0 });
  const names = natsNames(config.nats.prefix);
  let info;
  try {
    info = await (await jetstreamManager(nc)).streams.info(names.inputStream);
  } catch (error) {
    await nc.close();
    throw error;
  }
  const last = info.state.last_seq;
  const empty = info.state.messages === 0;
  const kindOf = inputKind(config.nats.prefix);
  async function* entries(): AsyncGenerator<JournalEntry> {
    try {
      if (empty) return;
      const consumer = await jetstream(nc).consumers.get(
        names.inputStream,
        options.from === undefined
          ? { deliver_policy: DeliverPolicy.All }
          : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(options.from).toISOString() },
      );
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 1000, expires: EXPIRES_MS });
        let got = 0;
        let done = false;
        for await (const m of batch) {
          got++;
          if (m.seq >= last) done = true;
          if (m.headers?.get('Nats-Msg-Id').startsWith(MOVED_MSG_ID)) continue;
          yield {
            seq: m.seq,
            at: Math.round(Number(m.info.timestampNanos) / 1e6),
            kind: kindOf(m.subject),
            payload: m.string(),
          };
        }
        if (done || got === 0) break;
      }
    } finally {
      await nc.close();
    }
  }
  return { entries: entries(), stream: names.inputStream };
}

/** The stream's entries gathered in memory (a short stream: tests). */
export async function readInputStream(
  config: Config,
  options: { from?: number | undefined } = {},
): Promise<{ entries: JournalEntry[]; stream: string }> {
  const { entries, stream } = await inputStreamEntries(config, options);
  const all: JournalEntry[] = [];
  for await (const entry of entries) all.push(entry);
  return { entries: all, stream };
}
