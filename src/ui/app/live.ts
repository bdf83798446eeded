import { authHeaders } from './api.ts';

export type LiveState = 'connecting' | 'live' | 'disconnected';

export interface LiveHandlers {
  onState(state: LiveState, detail?: string): void;
  /** Called when a stream is (re)established: reload everything, then apply what follows. */
  onReady(): void;
  onMessage(event: string, data: unknown): void;
}

/**
 * Reads the server-sent events at /ui/api/live with fetch (so the token goes in a header, never in the
 * URL), and reconnects by itself: a Warden restart shows as "disconnected" until the stream is back. A
 * stream that says nothing (not even its heartbeat) for `silenceMs` counts as dead.
 */
export function connectLive(handlers: LiveHandlers, silenceMs = 15_000): () => void {
  let stopped = false;
  let controller: AbortController | null = null;
  let delay = 250;

  const run = async (): Promise<void> => {
    while (!stopped) {
      controller = new AbortController();
      let watchdog: ReturnType<typeof setTimeout> | null = null;
      const pet = () => {
        if (watchdog) clearTimeout(watchdog);
        watchdog = setTimeout(() => controller?.abort(), silenceMs);
      };
      try {
        handlers.onState('connecting');
        const response = await fetch('/ui/api/live', { headers: authHeaders(), signal: controller.signal });
        if (!response.ok || !response.body) {
          const text = await response.text().catch(() => '');
          let message = `HTTP ${response.status}`;
          try {
            message = JSON.parse(text).error.message;
          } catch {
            // not JSON
          }
          throw new Error(message);
        }
        pet();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          pet();
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of frame.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data.push(line.slice(6));
            }
            if (data.length === 0) continue;
            if (event === 'ready') {
              delay = 250;
              handlers.onState('live');
              handlers.onReady();
            } else handlers.onMessage(event, JSON.parse(data.join('\n')));
          }
        }
        throw new Error('the stream ended');
      } catch (error) {
        if (stopped) return;
        handlers.onState('disconnected', (error as Error).message);
      } finally {
        if (watchdog) clearTimeout(watchdog);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 3000);
    }
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
