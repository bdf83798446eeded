/**
 * The compiled CLI's entry point: `node dist/cli/bin.js <command>` (bin/warden.js runs it when dist/ is
 * built and up to date).
 */
import { main } from './main.ts';

process.exitCode = await main(process.argv);
