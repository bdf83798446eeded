import { createHash } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { Alert } from './format.ts';

/** Where one kind of message goes: a URL, the body's format and the alert levels it takes. */
export interface AlertTarget {
  /** Stable across restarts and re-ordered configuration: the format and a hash of the URL. */
  readonly id: string;
  readonly url: string;
  readonly format: 'slack' | 'json';
  readonly levels: ReadonlyArray<Alert['level']>;
  readonly kinds: ReadonlyArray<Alert['kind']> | null;
}

/** The configured routes, with the legacy `webhookUrl` as a Slack route for every level. */
export function alertTargets(config: Config['alerts']): AlertTarget[] {
  const routes = [
    ...(config.webhookUrl
      ? [{ url: config.webhookUrl, format: 'slack' as const, levels: ['critical', 'warning'] as const }]
      : []),
    ...config.routes,
  ];
  const seen = new Set<string>();
  const targets: AlertTarget[] = [];
  for (const route of routes) {
    const id = `${route.format}-${createHash('sha256').update(route.url).digest('hex').slice(0, 12)}`;
    if (seen.has(id)) continue;
    seen.add(id);
    targets.push({
      id,
      url: route.url,
      format: route.format,
      levels: route.levels,
      kinds: 'kinds' in route && route.kinds ? route.kinds : null,
    });
  }
  return targets;
}

/** The targets an alert is routed to: by its level (severity), and by kind where a route names kinds. */
export function targetsFor(alert: Alert, targets: readonly AlertTarget[]): AlertTarget[] {
  return targets.filter(
    (t) => t.levels.includes(alert.level) && (t.kinds === null || t.kinds.includes(alert.kind)),
  );
}

/** A URL for logs: only its origin (a Slack webhook carries its key in the path). */
export const origin = (url: string): string => new URL(url).origin;
