/**
 * Checkpoints the SQLite write-ahead log from a worker thread. SQLite's automatic checkpoint runs on the
 * connection whose commit crossed the threshold: the commit path, which then copies the log's pages into
 * the database file and waits for two fsyncs (measured: about 45% of a commit per changed actor at 10,000
 * models). Here a second connection, in its own thread, runs a PASSIVE checkpoint every `everyMs`
 * (PASSIVE never blocks the writer nor a reader). The writers keep a high automatic threshold as a
 * backstop, should this thread fall behind or stop. Durability is SQLite's own: the checkpoint syncs the
 * log before it copies and the database after, as the automatic one does.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Pages of write-ahead log (4 KiB each) at which a writer checkpoints by itself: the backstop. */
export const BACKSTOP_CHECKPOINT_PAGES = 16_384;

/** The worker's code (plain CommonJS: it runs the same under tsx, vitest and the build). */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('synchronous = ' + workerData.synchronous);
let checkpoints = 0;
let failing = false;
const timer = setInterval(() => {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    checkpoints++;
    failing = false;
    if (workerData.report) parentPort.postMessage({ checkpoints, result });
  } catch (error) {
    // Told once when it starts failing (every 250 ms would flood the log), again if it fails after a success.
    if (!failing) parentPort.postMessage({ error: String(error) });
    failing = true;
  }
}, workerData.everyMs);
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface CheckpointResult {
  readonly busy: number;
  readonly log: number;
  readonly checkpointed: number;
}

export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(
    path: string,
    options: {
      readonly everyMs?: number;
      readonly synchronous: 'NORMAL' | 'FULL';
      /** Each checkpoint's result (tests). */
      readonly onCheckpoint?: (result: CheckpointResult) => void;
      readonly onError?: (message: string) => void;
    },
  ) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER, {
      eval: true,
      workerData: {
        path,
        driver,
        everyMs: options.everyMs ?? 250,
        synchronous: options.synchronous,
        report: options.onCheckpoint !== undefined,
      },
    });
    this.worker.on('message', (message: { result?: CheckpointResult; error?: string }) => {
      if (message.error !== undefined) options.onError?.(message.error);
      else if (message.result) options.onCheckpoint?.(message.result);
    });
    this.worker.on('error', (error) => options.onError?.(String(error)));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    // After the listeners (adding a 'message' listener refs a worker again): the service's lifetime is not
    // the checkpointer's to extend.
    this.worker.unref();
  }

  /** Stops checkpointing and closes the worker's connection (before the writer's, which checkpoints last). */
  async close(): Promise<void> {
    // Held open until the worker has closed its connection (it is unreferenced otherwise).
    this.worker.ref();
    this.worker.postMessage('close');
    await this.exited;
  }
}
