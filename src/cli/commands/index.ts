export { registerOperatorCommands } from './operator.ts';
export { CommandFailed } from '../exit-codes.ts';
