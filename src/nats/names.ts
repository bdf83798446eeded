/**
 * Every NATS name Warden uses, derived from the subject prefix (default `warden`), so that two deployments
 * with different prefixes can share one NATS without touching each other's streams, buckets or consumers.
 */
export interface NatsNames {
  readonly prefix: string;
  /** Inputs from producers: `<prefix>.in.>`. */
  readonly inputStream: string;
  /** Output events (the audit log) and Warden's internal messages: `<prefix>.evt.>`, `<prefix>.int.>`. */
  readonly eventStream: string;
  /** Actor snapshots with their unpublished outbox, and the rollback history. */
  readonly actorBucket: string;
  /** The training-config status trainers read: key = config key. */
  readonly trainingBucket: string;
  /** Each actor's timeline (its newest lines): key = `<kind>.<key>`, read on demand, never watched. */
  readonly timelineBucket: string;
  /** The built-in registry's production pointer: key = model id. */
  readonly registryBucket: string;
  /** Leases (entries expire unless renewed): which instance takes the inputs. */
  readonly leaseBucket: string;
  /** Queue group of the command responders (one instance answers each command). */
  readonly commandQueue: string;
  durable(name: string): string;
}

export function natsNames(prefix: string): NatsNames {
  const upper = prefix.toUpperCase().replace(/-/g, '_');
  return {
    prefix,
    inputStream: `${upper}_IN`,
    eventStream: `${upper}_EVENTS`,
    actorBucket: `${prefix}_actors`,
    trainingBucket: `${prefix}_training`,
    timelineBucket: `${prefix}_timeline`,
    registryBucket: `${prefix}_registry`,
    leaseBucket: `${prefix}_leases`,
    commandQueue: `${prefix}_commands`,
    durable: (name) => `${prefix}_${name}`,
  };
}
