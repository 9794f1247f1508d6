/**
 * The composition root of the `recsys` command: the runtime's program, plus the actor kinds and
 * the model commands of the layers above it. The runtime itself imports none of them.
 */
import { prepareDemoIndex, registerIndexCommand } from './actors/cli.js';
import { buildDemoModel, registerDemoCommand } from './models/cli/demo.js';
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
import { registerGatewayCommand, serveEmbeddedGateway } from './gateway/index.js';
import { buildProgram } from './runtime/cli/program.js';
import { loadCommandConfig } from './runtime/config/index.js';
import { createLogger } from './runtime/log.js';

await buildProgram({
  builtinKinds: createBuiltinKinds,
  commands: [
    (program) =>
      registerDemoCommand(program, (configPath) => {
        const config = loadCommandConfig(configPath, process.env);
        const log = createLogger({ level: config.log.level, pretty: config.log.pretty });
        return prepareDemoIndex(
          { config, log, configPath },
          (path) => buildDemoModel(path, process.env, log),
          process.env,
        );
      }),
    registerDataCommands,
    registerDataImportCommand,
    registerEvalCommand,
    registerEvalRankingCommand,
    registerGatewayCommand,
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
  // An embedded node loads its batch features, then serves the HTTP gateway from the same process.
  afterStart: async (context) => {
    await loadEmbeddedBatchFeatures(context);
    await serveEmbeddedGateway(context);
  },
}).parseAsync(process.argv);
