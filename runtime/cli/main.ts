/**
 * Entry point of the `recsys` command (see `bin/recsys.js`).
 */
import { buildProgram } from './program.js';

await buildProgram().parseAsync(process.argv);
