/** The API the dashboard reads and acts through; the token goes in a header, never in a URL. */

const TOKEN_KEY = 'warden.token';

export const token = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (value: string) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export function authHeaders(): Record<string, string> {
  const value = token.get();
  return value ? { authorization: `Bearer ${value}` } : {};
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { ...authHeaders() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, 'unreachable', `Warden cannot be reached (${(error as Error).message})`);
  }
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    // A plain-text answer (a proxy's error page): shown as it is.
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(response.status, error?.code ?? 'http_' + response.status, error?.message ?? text);
  }
  return parsed as T;
}

export interface ModelStatus {
  model_id: string;
  config_key: string;
  state: string;
  production_version: string | null;
  baseline: { elo: number | null; win_rate: number | null };
  consecutive_regressions: number;
  last_detection: { detection_id: string; severity: string; at: string; reason: string } | null;
  pending_approval: {
    detection_id: string;
    severity: string;
    reason: string;
    held_because: string;
    requested_at: string;
    deadline: string;
    to_version: string;
    evidence: number;
  } | null;
  rolling_back: { rollback_id: string; from_version: string; to_version: string; trigger: string } | null;
  cooldown_until: string | null;
  versions: Array<{
    version: string;
    elo: number | null;
    win_rate: number | null;
    promoted_at: string;
    rolled_back_from: boolean;
  }>;
  /** The statistical detector's running test (null in threshold mode and before its first window). */
  statistical_test?: {
    format: string;
    test: number;
    llr: number | null;
    llr_lower: number | null;
    llr_upper: number | null;
    games: number;
    windows: number;
  } | null;
}

export interface TrainingStatus {
  config_key: string;
  status: string;
  may_train: boolean;
  reason: string | null;
  by: string | null;
  since: string | null;
  auto_resume_at: string | null;
}

export interface Session {
  identity: string;
  role: string | null;
  reads_need_token: boolean;
  can_act: boolean;
  auth_mode: string;
}

export interface TimelineEntry {
  at: number;
  kind: 'model' | 'training';
  key: string;
  event: string;
  outcome: string;
  from: string;
  to: string;
  by: string | null;
  summary: string;
}

export interface MachineGraph {
  id: string;
  initial: string;
  states: string[];
  edges: Array<{ from: string; to: string; events: string[]; guards: string[] }>;
}
