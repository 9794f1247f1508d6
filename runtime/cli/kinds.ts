/**
 * Actor kinds a process can run: the built-in ones, plus kinds from modules named with
 * `--kinds-module`, so a team can run its own actors on the same runtime. Such a module exports
 * `createKinds(context)` returning the kinds (or a promise of them).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import type { ActorKind } from '../actor/actor.js';
import type { Protocol } from '../actor/protocol.js';
import type { ResolvedConfig } from '../config/index.js';
import type { RunningNode } from '../node.js';
import { ConfigError } from '../errors.js';

export interface KindModuleContext {
  config: ResolvedConfig;
  log: Logger;
}

/**
 * Prepares what a `recsys start` serves before its kinds are built (demo data on a fresh machine).
 * `configPath` is the config file the command was given, for tools that load it themselves.
 */
export type PrepareStart = (
  context: KindModuleContext & { configPath: string | undefined },
) => Promise<void>;

/**
 * Run by `recsys start` and `recsys node` once the node is up, before it reports ready: the layers
 * above load what the node's stores should hold (the batch features of the embedded store).
 */
export type AfterStart = (context: KindModuleContext & { node: RunningNode }) => Promise<void>;

export type CreateKinds = (
  context: KindModuleContext,
) => readonly ActorKind<Protocol>[] | Promise<readonly ActorKind<Protocol>[]>;

export async function loadKindModules(
  paths: readonly string[],
  context: KindModuleContext,
): Promise<ActorKind<Protocol>[]> {
  const kinds: ActorKind<Protocol>[] = [];
  for (const path of paths) {
    const module = (await import(pathToFileURL(resolve(path)).href)) as { createKinds?: unknown };
    if (typeof module.createKinds !== 'function') {
      throw new ConfigError(
        '--kinds-module',
        `${path} does not export a createKinds(context) function`,
      );
    }
    kinds.push(...(await (module.createKinds as CreateKinds)(context)));
  }
  return kinds;
}
