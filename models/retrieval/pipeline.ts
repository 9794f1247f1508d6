/**
 * `recsys train retrieval` as a function: train on the training part of a split, encode the
 * catalogue, export both towers to ONNX, check onnxruntime against the TypeScript model (a
 * mismatch fails the run), evaluate if asked, and write the versioned artifact folder.
 */
import type { Dataset, EventTable } from '../data/types.js';
import { writeRetrievalArtifact } from './artifact.js';
import type { SplitInfo, WrittenArtifact } from './artifact.js';
import { exportTowers } from './onnx-export.js';
import { checkExport } from './onnx-runtime.js';
import type { ExportCheck } from './onnx-runtime.js';
import type { UserQuery } from './scorer.js';
import { encodeCatalogue, trainTwoTower } from './train.js';
import type { TrainedTwoTower, TwoTowerTrainOptions } from './train.js';
import { TwoTowerScorer } from './two-tower-scorer.js';

/** onnxruntime's towers disagree with the TypeScript model beyond the tolerance. */
export class ExportCheckError extends Error {
  override readonly name = 'ExportCheckError';
  readonly code = 'retrieval_export_mismatch';
  constructor(readonly check: ExportCheck) {
    super(
      `the exported towers do not match the trained model: max |Δ| user ${check.userMaxAbsDiff}, item ${check.itemMaxAbsDiff} (tolerance ${check.tolerance})`,
    );
  }
}

export interface RetrievalPipelineInput {
  readonly dataset: Dataset;
  /** Events to train on (the training part of the split). */
  readonly train: EventTable;
  readonly split: SplitInfo;
  /** Folder the versioned artifact goes under (`<data.dir>/models/retrieval`). */
  readonly outRoot: string;
  readonly options: TwoTowerTrainOptions;
  /** Offline metrics of the trained model, written to the manifest (e.g. the evaluator's). */
  readonly evaluate?: (scorer: TwoTowerScorer, trained: TrainedTwoTower) => Record<string, unknown>;
  /** Progress lines (stderr in the command). */
  readonly log?: (line: string) => void;
}

export interface RetrievalPipelineResult {
  readonly trained: TrainedTwoTower;
  readonly artifact: WrittenArtifact;
  readonly exportCheck: ExportCheck;
  readonly metrics: Record<string, unknown>;
}

export async function trainRetrievalPipeline(
  input: RetrievalPipelineInput,
): Promise<RetrievalPipelineResult> {
  const log = input.log ?? (() => undefined);
  const { dataset, train } = input;
  log(
    `training the two-tower model on ${train.length} events (${dataset.users.ids.length} users, ${dataset.items.ids.length} items)`,
  );
  const trained = trainTwoTower(
    {
      dataset,
      events: train,
      referenceTime: input.split.cutoff ?? train.ts[train.length - 1] ?? NaN,
    },
    {
      ...input.options,
      onEpoch: (p) => {
        log(
          `epoch ${p.epoch}/${p.epochs}: loss ${p.loss.toFixed(4)}, ${Math.round(p.examplesPerSecond)} examples/s, ${p.seconds.toFixed(1)} s`,
        );
        input.options.onEpoch?.(p);
      },
    },
  );
  const itemEmbeddings = encodeCatalogue(trained.model, trained.itemFeatures);
  const exported = exportTowers(trained.model, {
    dataset_fingerprint: dataset.manifest.fingerprint,
  });
  const exportCheck = await checkExport({
    model: trained.model,
    userTower: exported.userTower,
    itemTower: exported.itemTower,
    queries: sampleQueries(train, dataset.users.ids.length, trained.model.shape.historyLength),
    profiles: trained.profiles,
    itemFeatures: trained.itemFeatures,
    items: sampleItems(dataset.items.ids.length),
  });
  log(
    `export check: max |Δ| user ${exportCheck.userMaxAbsDiff.toExponential(2)}, item ${exportCheck.itemMaxAbsDiff.toExponential(2)} (tolerance ${exportCheck.tolerance})`,
  );
  if (!exportCheck.passed) throw new ExportCheckError(exportCheck);

  const last = trained.report.epochs[trained.report.epochs.length - 1];
  const metrics: Record<string, unknown> = { trainLoss: last?.loss ?? null };
  if (input.evaluate !== undefined) {
    const scorer = new TwoTowerScorer(trained.model, itemEmbeddings, {
      profiles: trained.profiles,
    });
    Object.assign(metrics, input.evaluate(scorer, trained));
  }
  const artifact = await writeRetrievalArtifact(input.outRoot, {
    trained,
    dataset,
    split: input.split,
    exported,
    itemEmbeddings,
    exportCheck,
    metrics,
  });
  return { trained, artifact, exportCheck, metrics };
}

/**
 * Up to 48 users with their last training items, plus cold-start queries: no id and no history,
 * no id with a history, and a known id with no history.
 */
export function sampleQueries(
  train: EventTable,
  userCount: number,
  historyLength: number,
): UserQuery[] {
  const histories = new Map<number, number[]>();
  for (let e = 0; e < train.length && histories.size < 48; e++) {
    const u = train.user[e] as number;
    if (!histories.has(u)) histories.set(u, []);
  }
  for (let e = 0; e < train.length; e++) {
    const h = histories.get(train.user[e] as number);
    if (h === undefined) continue;
    h.push(train.item[e] as number);
    if (h.length > historyLength) h.shift();
  }
  const queries: UserQuery[] = [...histories].map(([userIndex, h]) => ({
    userIndex,
    history: Int32Array.from(h),
  }));
  const someHistory = queries[0]?.history ?? new Int32Array(0);
  queries.push({ userIndex: -1, history: new Int32Array(0) });
  queries.push({ userIndex: -1, history: someHistory });
  if (userCount > 0) queries.push({ userIndex: userCount - 1, history: new Int32Array(0) });
  return queries;
}

/** The first and last items and a spread between them, at most 96. */
export function sampleItems(itemCount: number): Int32Array {
  const n = Math.min(itemCount, 96);
  const out = new Int32Array(n);
  for (let k = 0; k < n; k++) out[k] = Math.round((k * (itemCount - 1)) / Math.max(n - 1, 1));
  return out;
}
