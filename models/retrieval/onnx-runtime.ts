/**
 * The towers on onnxruntime-node: batch encoders for both, a fast single-user encoder for
 * serving, and the export check (onnxruntime's outputs against the TypeScript model).
 *
 * Load onnxruntime-node on the main thread only: the native addon has crashed processes when
 * loaded in several worker threads at once.
 */
import * as ort from 'onnxruntime-node';
import { itemBatch, userBatch } from './features.js';
import type { ItemBatch, ItemFeatures, UserBatch } from './features.js';
import type { TwoTowerModel } from './model.js';
import type { UserQuery } from './scorer.js';

/** One thread and no parallel executor: a tower is a few small ops, and the host has other work. */
const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

function int64(values: Int32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor(
    'int64',
    BigInt64Array.from(values, (v) => BigInt(v)),
    dims,
  );
}

function float32(values: Float32Array, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('float32', values, dims);
}

async function createSession(model: string | Uint8Array): Promise<ort.InferenceSession> {
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, SESSION_OPTIONS)
    : ort.InferenceSession.create(model, SESSION_OPTIONS);
}

function outputOf(results: ort.InferenceSession.OnnxValueMapType, name: string): Float32Array {
  const tensor = results[name];
  if (tensor === undefined || !(tensor.data instanceof Float32Array)) {
    throw new TypeError(`the tower returned no float32 output ${name}`);
  }
  return tensor.data;
}

/** The user tower on onnxruntime. */
export class OnnxUserTower {
  private readonly single: {
    userIndex: BigInt64Array;
    profile: BigInt64Array;
    history: BigInt64Array;
    historyMask: Float32Array;
    feeds: Record<string, ort.Tensor>;
  };

  private constructor(
    private readonly session: ort.InferenceSession,
    readonly historyLength: number,
    private readonly profiles: Int32Array | undefined,
  ) {
    const n = historyLength;
    const userIndex = new BigInt64Array(1);
    const profile = new BigInt64Array(3);
    const history = new BigInt64Array(n);
    const historyMask = new Float32Array(n);
    // The single-user inputs are allocated once and rewritten in place for every call.
    this.single = {
      userIndex,
      profile,
      history,
      historyMask,
      feeds: {
        user_index: new ort.Tensor('int64', userIndex, [1]),
        profile: new ort.Tensor('int64', profile, [1, 3]),
        history: new ort.Tensor('int64', history, [1, n]),
        history_mask: new ort.Tensor('float32', historyMask, [1, n]),
      },
    };
  }

  /**
   * @param model path of `user_tower.onnx`, or its bytes
   * @param profiles `[users × 3]` profiles to look a query's profile up by user index
   */
  static async load(
    model: string | Uint8Array,
    historyLength: number,
    profiles?: Int32Array,
  ): Promise<OnnxUserTower> {
    return new OnnxUserTower(await createSession(model), historyLength, profiles);
  }

  /** User embeddings `[B × dims]` of a batch of inputs. */
  async encodeBatch(batch: UserBatch): Promise<Float32Array> {
    const { size } = batch;
    const n = batch.historyLength;
    const results = await this.session.run({
      user_index: int64(batch.userIndex, [size]),
      profile: int64(batch.profile, [size, 3]),
      history: int64(batch.history, [size, n]),
      history_mask: float32(batch.historyMask, [size, n]),
    });
    return outputOf(results, 'user_embedding');
  }

  /** User embeddings of queries (see {@link userBatch}). */
  async encodeQueries(queries: readonly UserQuery[]): Promise<Float32Array> {
    return this.encodeBatch(userBatch(queries, this.historyLength, this.profiles));
  }

  /** The embedding of one user, with preallocated inputs: the serving path. */
  async encodeUser(query: UserQuery): Promise<Float32Array> {
    const s = this.single;
    const u = query.userIndex;
    s.userIndex[0] = BigInt(u >= 0 ? u : -1);
    const p = query.profile;
    const profiles = this.profiles;
    if (p !== undefined) {
      s.profile[0] = BigInt(p.ageBand);
      s.profile[1] = BigInt(p.country);
      s.profile[2] = BigInt(p.device);
    } else if (profiles !== undefined && u >= 0 && u * 3 + 2 < profiles.length) {
      for (let c = 0; c < 3; c++) s.profile[c] = BigInt(profiles[u * 3 + c] as number);
    } else {
      s.profile.fill(-1n);
    }
    const n = this.historyLength;
    const h = query.history;
    const from = Math.max(0, h.length - n);
    const count = h.length - from;
    for (let i = 0; i < n; i++) {
      const present = i < count;
      s.history[i] = present ? BigInt(h[from + i] as number) : -1n;
      s.historyMask[i] = present ? 1 : 0;
    }
    return outputOf(await this.session.run(s.feeds), 'user_embedding');
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** The item tower on onnxruntime. */
export class OnnxItemTower {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async load(model: string | Uint8Array): Promise<OnnxItemTower> {
    return new OnnxItemTower(await createSession(model));
  }

  async encodeBatch(batch: ItemBatch): Promise<Float32Array> {
    const { size, maxTags } = batch;
    const results = await this.session.run({
      item_index: int64(batch.itemIndex, [size]),
      category: int64(batch.category, [size]),
      tags: int64(batch.tags, [size, maxTags]),
      tags_mask: float32(batch.tagsMask, [size, maxTags]),
      age_bucket: int64(batch.ageBucket, [size]),
      popularity_bucket: int64(batch.popularityBucket, [size]),
    });
    return outputOf(results, 'item_embedding');
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** Outcome of comparing onnxruntime's outputs with the TypeScript model on a sample. */
export interface ExportCheck {
  readonly passed: boolean;
  readonly tolerance: number;
  readonly users: number;
  readonly items: number;
  readonly userMaxAbsDiff: number;
  readonly itemMaxAbsDiff: number;
}

export interface ExportCheckInput {
  readonly model: TwoTowerModel;
  readonly userTower: Uint8Array;
  readonly itemTower: Uint8Array;
  /** Sample users; cold-start queries (index -1, empty history) should be among them. */
  readonly queries: readonly UserQuery[];
  readonly profiles?: Int32Array;
  readonly itemFeatures: ItemFeatures;
  /** Sample items (item indices); the check adds an unknown-id copy of the first. */
  readonly items: ArrayLike<number>;
  /** @default 1e-5 */
  readonly tolerance?: number;
}

/** Runs both exported towers on onnxruntime and compares them with the TypeScript model. */
export async function checkExport(input: ExportCheckInput): Promise<ExportCheck> {
  const tolerance = input.tolerance ?? 1e-5;
  const { model } = input;
  const users = userBatch(input.queries, model.shape.historyLength, input.profiles);
  const items = itemBatch(input.itemFeatures, input.items);
  if (items.size > 0) items.itemIndex[0] = -1;
  const userTower = await OnnxUserTower.load(input.userTower, model.shape.historyLength);
  const itemTower = await OnnxItemTower.load(input.itemTower);
  try {
    const userDiff = maxAbsDiff(await userTower.encodeBatch(users), model.encodeUsers(users));
    const itemDiff = maxAbsDiff(await itemTower.encodeBatch(items), model.encodeItems(items));
    return {
      passed: userDiff <= tolerance && itemDiff <= tolerance,
      tolerance,
      users: users.size,
      items: items.size,
      userMaxAbsDiff: userDiff,
      itemMaxAbsDiff: itemDiff,
    };
  } finally {
    await userTower.close();
    await itemTower.close();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (!(d <= max)) max = d;
  }
  return max;
}
