/**
 * A worker thread of a parallel replay (src/lab/parallel.ts): runs its shard of every policy over the
 * whole history it was handed, and answers once, with its runs or its error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runShard, type ShardAnswer, type ShardTask } from './parallel.ts';

let answer: ShardAnswer;
try {
  answer = { ok: true, runs: runShard(workerData as ShardTask) };
} catch (error) {
  answer = { ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}
parentPort!.postMessage(answer);
