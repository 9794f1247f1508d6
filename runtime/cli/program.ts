/**
 * The `recsys` command line: one entry point for every process and tool of the project.
 */
import { Command, Option } from 'commander';
import { runNodeCommand, runServicesCommand } from './commands.js';
import type { AfterStart, CreateKinds, PrepareStart } from './kinds.js';

export interface ProgramOptions {
  /**
   * Actor kinds every process knows without `--kinds-module`, built from the resolved config
   * (kinds such as the item shard need paths and sizes from it).
   */
  builtinKinds?: CreateKinds;
  /** Adds more subcommands (data, training, evaluation, ...) from the layers above the runtime. */
  commands?: ReadonlyArray<(program: Command) => void>;
  /**
   * Run by `recsys start` (unless `--no-demo`) before the kinds are built: the layers above make
   * sure there is something to serve (demo data) on a fresh machine.
   */
  prepareStart?: PrepareStart;
  /** Run by `recsys node` and `recsys start` once the node is up (loads the embedded store). */
  afterStart?: AfterStart;
}

export function buildProgram(options: ProgramOptions = {}): Command {
  const builtinKinds: CreateKinds = options.builtinKinds ?? (() => []);
  const program = new Command('recsys')
    .description('A real-time recommender served by actors over NATS')
    .showHelpAfterError();

  program
    .command('node')
    .description(
      'Run a host process with a chosen set of actor kinds (NATS, or in-process when embedded)',
    )
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option(
      '-a, --actors <kinds>',
      'comma-separated actor kinds to run (default: host.actors, or all)',
    )
    .option('--host-id <id>', 'host id (default: host.id, or generated)')
    .addOption(new Option('--transport <transport>', 'transport').choices(['nats', 'inproc']))
    .option('--nats-url <url>', 'NATS server URL(s), comma-separated')
    .option(
      '--group <kind=groups...>',
      'groups served for a grouped kind, e.g. items=0,1 (repeatable)',
      collect,
      [],
    )
    .option(
      '--kinds-module <path>',
      'load extra actor kinds from a module exporting createKinds() (repeatable)',
      collect,
      [],
    )
    .action((flags: NodeCommandOptions) =>
      runNodeCommand(flags, builtinKinds, undefined, options.afterStart),
    );

  program
    .command('start')
    .description('Start everything in one process on the embedded (in-process) transport')
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option(
      '--kinds-module <path>',
      'load extra actor kinds from a module exporting createKinds() (repeatable)',
      collect,
      [],
    )
    .option('--no-demo', 'do not build demo data when <data.dir> has nothing to serve')
    .action((flags: NodeCommandOptions) =>
      runNodeCommand(
        { ...flags, transport: 'inproc' },
        builtinKinds,
        flags.demo === false ? undefined : options.prepareStart,
        options.afterStart,
      ),
    );

  program
    .command('services')
    .description('List the actor services on NATS, as `nats micro list/info/stats` would')
    .addOption(
      new Option('--verb <verb>', 'what to ask every service')
        .choices(['ping', 'info', 'stats'])
        .default('ping'),
    )
    .option('--name <name>', 'only the service with this name (e.g. recsys-user)')
    .option('--nats-url <url>', 'NATS server URL(s), comma-separated')
    .option('-c, --config <path>', 'config file (default: $RECSYS_CONFIG or configs/config.yaml)')
    .option('--json', 'print the raw replies as JSON')
    .action(runServicesCommand);

  for (const register of options.commands ?? []) register(program);
  return program;
}

export interface NodeCommandOptions {
  config?: string;
  actors?: string;
  hostId?: string;
  transport?: 'nats' | 'inproc';
  natsUrl?: string;
  group?: string[];
  kindsModule?: string[];
  /** `recsys start` only: `false` (`--no-demo`) skips {@link ProgramOptions.prepareStart}. */
  demo?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
