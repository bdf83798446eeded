/**
 * How inputs are partitioned by model: nats-server's deterministic subject mapping (`partition(n, 2)`,
 * nats-server 2.8 and later) puts `<prefix>.in.<kind>.<model_id>` on `<prefix>.part.<k>.<kind>.<model_id>`
 * with k the FNV-1a hash of the model id modulo n. Warden computes the same k, to check where an input
 * landed and to move one that landed elsewhere (the mapping missing, or made for another n).
 */

/** FNV-1a, 32 bits, over the UTF-8 bytes: the hash nats-server's `partition` mapping function uses. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** The partition of a model's inputs, as nats-server's mapping computes it. */
export function partitionOf(modelId: string, partitions: number): number {
  return partitions <= 1 ? 0 : fnv1a32(modelId) % partitions;
}

/** The server mapping that partitions the inputs (nats.conf `mappings`, or an account's mappings). */
export function partitionMapping(prefix: string, partitions: number): { from: string; to: string } {
  return {
    from: `${prefix}.in.*.*`,
    to: `${prefix}.part.{{partition(${partitions},2)}}.{{wildcard(1)}}.{{wildcard(2)}}`,
  };
}

/** Where a partitioned input sits: `<prefix>.part.<k>.<kind>.<model_id>`. */
export function partitionedSubject(prefix: string, partition: number, kind: string, modelId: string): string {
  return `${prefix}.part.${partition}.${kind}.${modelId}`;
}

/** The message id of an input Warden moved to its partition (`moved:<stream id>:<sequence>`). */
export const MOVED_MSG_ID = 'moved:';

/**
 * `<prefix>.part.<k>.<rest>` -> `{ partition: k, subject: <prefix>.in.<rest> }` (what producers published);
 * `<prefix>.int.pause_acknowledged.<k>.<model>` -> the same without `<k>`; anything else: null.
 */
export function unpartition(prefix: string, subject: string): { partition: number; subject: string } | null {
  const part = `${prefix}.part.`;
  if (subject.startsWith(part)) {
    const dot = subject.indexOf('.', part.length);
    if (dot < 0) return null;
    const partition = Number(subject.slice(part.length, dot));
    if (!Number.isInteger(partition) || partition < 0) return null;
    return { partition, subject: `${prefix}.in.${subject.slice(dot + 1)}` };
  }
  const ack = `${prefix}.int.pause_acknowledged.`;
  if (subject.startsWith(ack)) {
    const rest = subject.slice(ack.length).split('.');
    if (rest.length !== 2) return null;
    const partition = Number(rest[0]);
    if (!Number.isInteger(partition) || partition < 0) return null;
    return { partition, subject: `${ack}${rest[1]}` };
  }
  return null;
}
