import type { BusMessage } from '../actors/ports.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(payload: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(payload));
}

/** What the bus hands to handlers; `tooLarge` messages are rejected before anyone parses them. */
export type Decoded =
  | { readonly kind: 'message'; readonly message: BusMessage }
  | { readonly kind: 'tooLarge'; readonly bytes: number; readonly head: string };

/**
 * Bytes to a bus message: JSON becomes `data`; anything else arrives with `data` undefined and the text in
 * `raw`, so that Warden can say why it refused it. Payloads over `maxBytes` are not parsed at all.
 */
export function decodeMessage(subject: string, bytes: Uint8Array, maxBytes: number): Decoded {
  if (bytes.length > maxBytes) {
    return { kind: 'tooLarge', bytes: bytes.length, head: decoder.decode(bytes.subarray(0, 1024)) };
  }
  const raw = decoder.decode(bytes);
  let data: unknown;
  try {
    data = raw.length === 0 ? undefined : JSON.parse(raw);
  } catch {
    data = undefined;
  }
  return { kind: 'message', message: { subject, data, raw } };
}

/**
 * An input without an event_id gets one from its place in the stream, so that a redelivery of the same
 * message is recognised as a duplicate. An event_id the producer gave (even a malformed one) is kept.
 */
export function withStreamEventId(message: BusMessage, streamId: string, sequence: number): BusMessage {
  const data = message.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data) || 'event_id' in data) return message;
  return { ...message, data: { ...data, event_id: `${streamId}:${sequence}` } };
}
