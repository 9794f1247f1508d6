/**
 * The composition root of the `recsys` command: the runtime's program, plus the actor kinds and
 * the model commands of the layers above it. The runtime itself imports none of them.
 */
import { prepareDemoIndex, registerIndexCommand } from './actors/cli.js';
import { buildDemoModel } from './models/cli/demo.js';
import { registerDataImportCommand } from './models/cli/data-import.js';
import { registerDataCommands } from './models/cli/data.js';
import { registerEvalCommand } from './models/cli/eval.js';
import { registerEvalRankingCommand } from './models/cli/eval-ranking.js';
import {
  loadEmbeddedBatchFeatures,
  registerMaterializeCommands,
} from './models/cli/materialize.js';
import { registerTrainCommands } from './models/cli/train.js';
import { registerTrainRankerCommand } from './models/cli/train-ranker.js';
import { createBuiltinKinds } from './actors/kinds.js';
import { buildProgram } from './runtime/cli/program.js';

await buildProgram({
  builtinKinds: createBuiltinKinds,
  commands: [
    registerDataCommands,
    registerDataImportCommand,
    registerEvalCommand,
    registerEvalRankingCommand,
    registerIndexCommand,
    registerMaterializeCommands,
    registerTrainCommands,
    registerTrainRankerCommand,
  ],
  prepareStart: async (context) => {
    await prepareDemoIndex(
      context,
      (configPath) => buildDemoModel(configPath, process.env, context.log),
      process.env,
    );
  },
  afterStart: loadEmbeddedBatchFeatures,
}).parseAsync(process.argv);
