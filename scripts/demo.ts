/**
 * `npm run demo`: a scripted scenario through a real embedded Warden (SQLite in a temporary directory, the
 * in-process bus), on a simulated clock so that it runs in a moment: a promotion, healthy evaluations, a
 * regression, the rollback, the paused training config, an operator's resume. Prints a timeline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/actors/manual-clock.ts';
import { parseConfig } from '../src/config/load.ts';
import { createWarden } from '../src/warden.ts';

const MODEL = 'hex8_2p';
const start = Date.UTC(2026, 10, 26, 9, 0, 0);
const clock = new ManualClock(start);
const dir = mkdtempSync(join(tmpdir(), 'warden-demo-'));

function at(): string {
  const s = Math.round((clock.now() - start) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

function line(text: string): void {
  console.log(`  ${at()}  ${text}`);
}

/** Events arrive while an action is still returning; they are printed after the action's own line. */
const events: string[] = [];
function event(text: string): void {
  events.push(`  ${at()}    ${text}`);
}
function flushEvents(): void {
  for (const text of events.splice(0)) console.log(text);
}

const fmt = (n: number | null | undefined, digits = 1) =>
  n === null || n === undefined ? '-' : n.toFixed(digits);

async function main(): Promise<void> {
  const warden = await createWarden(parseConfig({ dataDir: dir, cooldownSeconds: 300 }), { clock });
  console.log(`Warden demo: model ${MODEL}, embedded mode, statistical detection (SPRT, elo0 0, elo1 -30).`);
  console.log('Times are simulated (mm:ss from the start).\n');

  warden.bus.subscribe('warden.evt.>', (message) => {
    const line = event;
    const kind = message.subject.split('.')[2];
    const e = message.data as Record<string, unknown>;
    switch (kind) {
      case 'regression_detected': {
        const stats = e.statistics as {
          llr: number;
          elo: number;
          elo_lower: number;
          elo_upper: number;
        } | null;
        line(
          `REGRESSION_DETECTED ${String(e.severity).toUpperCase()} on ${e.version}: ${e.reason}` +
            (stats ? ` [LLR ${fmt(stats.llr, 2)}]` : '') +
            ` -> decision: ${e.decision}`,
        );
        break;
      }
      case 'promotion_rolled_back':
        line(
          `PROMOTION_ROLLED_BACK ${e.model_id} ${e.from_version} -> ${e.to_version} (${e.triggered_by}, rollback ${e.rollback_id})`,
        );
        break;
      case 'training_paused':
        line(`TRAINING_PAUSED ${e.config_key} by ${e.by}`);
        break;
      case 'training_resumed':
        line(`TRAINING_RESUMED ${e.config_key} by ${e.by}: ${e.reason}`);
        break;
      case 'alert':
        line(`ALERT (${e.level}) ${e.message}`);
        break;
      case 'regression_cleared':
        line(`REGRESSION_CLEARED ${e.model_id}`);
        break;
      default:
        if (kind && !kind.startsWith('regression_')) line(`${kind.toUpperCase()} ${JSON.stringify(e)}`);
    }
  });

  const promote = async (version: string, elo: number) => {
    await warden.promote({ model_id: `${MODEL}_${version}`, elo });
    await warden.idle();
    line(`promoted ${MODEL} ${version} (Elo ${elo})`);
    flushEvents();
  };
  const evaluate = async (wins: number, draws: number, losses: number) => {
    clock.advance(60_000);
    const result = await warden.evaluate({
      model_id: MODEL,
      games_played: wins + draws + losses,
      wins,
      draws,
      losses,
    });
    line(
      `evaluation vs baseline: W${wins} D${draws} L${losses} -> ${result.outcome.kind}, model ${result.state}`,
    );
    await warden.idle();
    flushEvents();
  };
  const mayTrain = () => {
    const t = warden.trainingStatus(MODEL);
    line(`trainer asks "may I train ${MODEL}?" -> ${t.may_train ? 'yes' : `no (paused by ${t.by})`}`);
  };

  await promote('v41', 1510);
  await promote('v42', 1532);
  mayTrain();
  await evaluate(46, 10, 44);
  await evaluate(44, 12, 44);
  await evaluate(30, 10, 60);
  await evaluate(28, 12, 60);
  mayTrain();

  clock.advance(5 * 60_000);
  await warden.idle();
  flushEvents();
  line(
    `cooldown over: model ${warden.status(MODEL).models[0]!.state}, production ${warden.status(MODEL).models[0]!.production_version}`,
  );

  clock.advance(60_000);
  await warden.resume(MODEL, { by: 'alice', note: 'bad replay buffer purged' });
  line('operator alice resumes training of hex8_2p');
  await warden.idle();
  flushEvents();
  mayTrain();

  console.log('\nRollback history (newest first):');
  for (const r of (await warden.history({ model_id: MODEL })).rollbacks) {
    console.log(
      `  ${r.rollback_id}: ${r.from_version} -> ${r.to_version}, ${r.triggered_by}, by ${r.by}: ${r.reason}`,
    );
  }
  await warden.stop();
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
