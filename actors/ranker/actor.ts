/**
 * The `rank` actor: scores a user's candidates with the ranker its model slot serves. One group
 * per slot (`gbdt`, `deepfm`), every replica of a slot in its queue group; replicas keep no state
 * but the loaded model, so any of them answers any request.
 *
 * A request's features come from the online store through the process's cache (the user's views
 * once, the candidates' views in one read each), are assembled by the same definitions the
 * training examples were built with, and are scored in one batch. The model version follows the
 * registry: a promotion loads the new version beside the old one, then swaps them in one step;
 * requests already running finish on the version they started with, and a version that fails to
 * load leaves the old one serving.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ActorContext, ActorKind } from '../../runtime/actor/actor.js';
import { Actor, defineActorKind } from '../../runtime/actor/actor.js';
import type { Handlers } from '../../runtime/actor/protocol.js';
import { ConfigError, UnavailableError } from '../../runtime/errors.js';
import type { KvWatch } from '../../runtime/kv/types.js';
import { assembleFeatures, onlineRankingInputs } from '../../models/ranking/features.js';
import type { RankerModel } from '../../models/ranking/ranker.js';
import { ModelRegistry } from '../../models/registry/index.js';
import type { RegistryEntry } from '../../models/registry/index.js';
import { validateRank, validateStats } from './messages.js';
import type { RankReply, RankRequest, RankerProtocol, RankerStats } from './messages.js';

export const RANK_KIND = 'rank';
const LATENCY_WINDOW = 1024;

export interface RankerKindOptions {
  /** `<data.dir>/models`: a slot with no promotion serves the newest `ranker-<slot>/<version>`. */
  modelsDir: string;
  /** Opens a ranker artefact folder (`loadRanker` of models/ranking). */
  load: (dir: string) => Promise<RankerModel>;
  /** Slots served when `host.groups` does not name this kind. @default the slots found on disk */
  slots?: readonly string[];
}

/** The registry slot of a rank group: `ranker.<group>`. */
export function rankerSlot(group: string): string {
  return `ranker.${group}`;
}

/** Slots with at least one artefact folder under `modelsDir` (`ranker-<slot>/<version>`). */
export function localRankerSlots(modelsDir: string): string[] {
  if (!existsSync(modelsDir)) return [];
  return readdirSync(modelsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name.startsWith('ranker-'))
    .map((entry) => entry.name.slice('ranker-'.length))
    .filter((slot) => newestArtifact(modelsDir, slot) !== undefined)
    .sort();
}

/** The newest version folder of `slot` (versions start with their build time). */
export function newestArtifact(modelsDir: string, slot: string): string | undefined {
  const root = join(modelsDir, `ranker-${slot}`);
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
    .map((entry) => entry.name)
    .sort();
  const newest = versions.at(-1);
  return newest === undefined ? undefined : join(root, newest);
}

interface Loaded {
  model: RankerModel;
  dir: string;
  /** Requests running on it: a replaced model is closed once they are done. */
  running: number;
  retired: boolean;
}

export class RankerActor extends Actor<RankerProtocol> {
  private current: Loaded | undefined;
  private watch: KvWatch | undefined;
  private loading: Promise<void> = Promise.resolve();
  private readonly latencies = new Float64Array(LATENCY_WINDOW);
  private requests = 0;
  private candidates = 0;
  private batchMax = 0;
  private loadFailures = 0;

  constructor(
    ctx: ActorContext,
    private readonly options: RankerKindOptions,
  ) {
    super(ctx);
  }

  override async onActivate(): Promise<void> {
    if (this.ctx.features === undefined) {
      throw new ConfigError('features', 'the rank actor needs a feature store on its host');
    }
    const slot = rankerSlot(this.ctx.key);
    const registry =
      this.ctx.kv === undefined
        ? undefined
        : await ModelRegistry.open(this.ctx.kv, this.ctx.prefix);
    const promoted = await registry?.current(slot);
    const dir = promoted?.dir ?? newestArtifact(this.options.modelsDir, this.ctx.key);
    if (dir === undefined) {
      throw new ConfigError(
        'host.groups.rank',
        `no model for ${slot}: promote one, or train one into ${join(this.options.modelsDir, `ranker-${this.ctx.key}`)}`,
      );
    }
    await this.switchTo(dir);
    // Later promotions swap the model in place; the first callback repeats the current entry.
    this.watch = await registry?.watch(slot, (entry) => this.promoted(entry));
  }

  override async onDeactivate(): Promise<void> {
    this.watch?.stop();
    await this.loading;
    const current = this.current;
    this.current = undefined;
    if (current !== undefined) await this.retire(current);
  }

  private promoted(entry: RegistryEntry): void {
    if (entry.dir === this.current?.dir) return;
    // One load at a time, in promotion order.
    this.loading = this.loading.then(() =>
      this.switchTo(entry.dir).catch((err: unknown) => {
        this.loadFailures++;
        this.ctx.log.error(
          { err, dir: entry.dir },
          'ranker model failed to load; the old one serves',
        );
      }),
    );
  }

  private async switchTo(dir: string): Promise<void> {
    const model = await this.options.load(dir);
    const previous = this.current;
    this.current = { model, dir, running: 0, retired: false };
    this.ctx.log.info({ version: model.version, kind: model.kind, dir }, 'ranker model serving');
    if (previous !== undefined) await this.retire(previous);
  }

  private async retire(loaded: Loaded): Promise<void> {
    loaded.retired = true;
    if (loaded.running === 0) await loaded.model.close();
  }

  readonly handlers: Handlers<RankerProtocol> = {
    rank: (request) => this.rank(request),
    stats: () => this.stats(),
  };

  private async rank(request: RankRequest): Promise<RankReply> {
    const loaded = this.current;
    if (loaded === undefined) throw new UnavailableError('no ranker model loaded');
    const started = performance.now();
    loaded.running++;
    try {
      const { model } = loaded;
      const candidates = request.candidates.map((c) => ({ itemId: c.item_id, score: c.score }));
      const inputs = await onlineRankingInputs(
        this.ctx.features!.online,
        request.user_id,
        candidates,
        request.now_ms ?? Date.now(),
      );
      const n = candidates.length;
      const rows = assembleFeatures(model.schema, inputs.contexts);
      const scores = await model.score(rows, n);
      const order = Array.from({ length: n }, (_, i) => i)
        .sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b)
        .slice(0, request.top_k ?? n);
      this.record(n, performance.now() - started);
      return {
        items: order.map((i) => ({
          item_id: request.candidates[i]!.item_id,
          score: scores[i] as number,
        })),
        model_version: model.version,
        degraded: [...inputs.degraded],
      };
    } finally {
      loaded.running--;
      if (loaded.retired && loaded.running === 0) await loaded.model.close();
    }
  }

  private record(candidates: number, ms: number): void {
    this.latencies[this.requests % LATENCY_WINDOW] = ms;
    this.requests++;
    this.candidates += candidates;
    this.batchMax = Math.max(this.batchMax, candidates);
  }

  override stats(): RankerStats {
    const filled = Math.min(this.requests, LATENCY_WINDOW);
    const sorted = this.latencies.slice(0, filled).sort();
    const at = (q: number): number | null =>
      filled === 0 ? null : (sorted[Math.min(filled - 1, Math.floor(q * filled))] as number);
    const model = this.current?.model;
    return {
      slot: rankerSlot(this.ctx.key),
      model_version: model?.version ?? null,
      model_kind: model?.kind ?? null,
      model_dir: this.current?.dir ?? null,
      requests: this.requests,
      batch_mean: this.requests === 0 ? 0 : this.candidates / this.requests,
      batch_max: this.batchMax,
      latency_p50_ms: at(0.5),
      latency_p99_ms: at(0.99),
      load_failures: this.loadFailures,
    };
  }
}

export function rankerKind(options: RankerKindOptions): ActorKind<RankerProtocol> {
  const slots = options.slots ?? localRankerSlots(options.modelsDir);
  return defineActorKind<RankerProtocol>({
    name: RANK_KIND,
    placement: 'grouped',
    description: 'Scores candidates with the ranker a model slot serves (GBDT, DeepFM)',
    version: '0.1.0',
    validators: { rank: validateRank, stats: validateStats },
    create: (ctx) => new RankerActor(ctx, options),
    // Handlers only wait on the feature store and the model's session; the model reference each
    // one uses is taken once, so several requests may run at once.
    concurrency: 8,
    passivateAfterMs: null,
    activateOnStart: true,
    defaultGroups: slots,
  });
}
