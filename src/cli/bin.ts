/**
 * The compiled CLI's entry point: `node dist/cli/bin.js <command>` (bin/warden.js runs it when dist/ is
 * built and up to date).
 */
import { endQuietlyWhenOutputCloses, main } from './main.ts';

endQuietlyWhenOutputCloses();
process.exitCode = await main(process.argv);
