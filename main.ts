/**
 * The composition root of the `recsys` command: the runtime's program, plus the actor kinds and
 * the model commands of the layers above it. The runtime itself imports none of them.
 */
import { buildProgram } from './runtime/cli/program.js';

await buildProgram({ builtinKinds: [], commands: [] }).parseAsync(process.argv);
