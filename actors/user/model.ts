/**
 * The retrieval model as the user actors use it: the user tower on onnxruntime, the id spaces
 * (user and item ids → indices), the profile vocabularies, and the popular items of the fallback.
 * Loaded once per process by the kind and shared by every user actor; onnxruntime runs on the
 * main thread.
 *
 * Loading never throws: a part that fails to load is missing, and the actors degrade around it
 * (no tower: the popular items; no popular list: an empty fallback).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { readPopularItems, readRetrievalManifest } from '../../models/retrieval/artifact.js';
import { OnnxUserTower } from '../../models/retrieval/onnx-runtime.js';
import type { UserProfile, UserQuery } from '../../models/retrieval/scorer.js';

/** The profile fields of the `user_profile` view the tower reads, as the view stores them. */
export interface ProfileValues {
  readonly age_band: string;
  readonly country: string;
  readonly device: string;
}

interface Vocab {
  ageBands?: string[];
  countries?: string[];
  devices?: string[];
}

function indexOf(values: readonly string[] | undefined): Map<string, number> {
  return new Map((values ?? []).map((value, i) => [value, i]));
}

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8')) as unknown;
}

export class UserModel {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    /** The model version ('' when the manifest could not be read). */
    readonly version: string,
    private readonly tower: OnnxUserTower | undefined,
    /** Items the tower pools. */
    readonly historyLength: number,
    private readonly users: ReadonlyMap<string, number>,
    private readonly items: ReadonlyMap<string, number>,
    private readonly vocab: {
      ageBands: ReadonlyMap<string, number>;
      countries: ReadonlyMap<string, number>;
      devices: ReadonlyMap<string, number>;
    },
    /** The most popular item ids, most first. */
    readonly popular: readonly string[],
  ) {}

  /**
   * Reads the artefact folder `dir`. Parts that fail are logged and left out.
   * @param popularItems most popular items kept (`recommend.popular_items`)
   * @param historyLength items pooled when the manifest cannot say
   */
  static async load(
    dir: string,
    options: { popularItems: number; historyLength: number; log: Logger },
  ): Promise<UserModel> {
    const { log } = options;
    let version = '';
    let historyLength = options.historyLength;
    let tower: OnnxUserTower | undefined;
    let popular: string[] = [];
    let users = new Map<string, number>();
    let items = new Map<string, number>();
    let vocab: Vocab = {};
    try {
      const manifest = await readRetrievalManifest(dir);
      version = manifest.version;
      historyLength = manifest.shape.historyLength;
      popular = await readPopularItems(dir, manifest).catch((err: unknown) => {
        log.error({ err, dir }, 'popular items unreadable: the fallback has nothing to serve');
        return [];
      });
      const [userIds, itemIds, vocabJson] = await Promise.all([
        readJson(join(dir, manifest.ids.users)),
        readJson(join(dir, manifest.ids.items)),
        readJson(join(dir, manifest.ids.vocab)),
      ]);
      users = indexOf(userIds as string[]);
      items = indexOf(itemIds as string[]);
      vocab = vocabJson as Vocab;
      tower = await OnnxUserTower.load(
        join(dir, manifest.signatures.userTower.file),
        historyLength,
      );
    } catch (err) {
      log.error({ err, dir }, 'user tower not loaded: recommendations fall back to popular items');
    }
    return new UserModel(
      dir,
      version,
      tower,
      historyLength,
      users,
      items,
      {
        ageBands: indexOf(vocab.ageBands),
        countries: indexOf(vocab.countries),
        devices: indexOf(vocab.devices),
      },
      popular.slice(0, options.popularItems),
    );
  }

  /** Whether the tower loaded: without it there is no retrieval. */
  get ready(): boolean {
    return this.tower !== undefined;
  }

  /** The user's row in `user_ids.json`; -1 for a user the model does not know. */
  userIndex(userId: string): number {
    return this.users.get(userId) ?? -1;
  }

  /** The item's row in `item_ids.json`; -1 for an item newer than the model. */
  itemIndex(itemId: string): number {
    return this.items.get(itemId) ?? -1;
  }

  /** The profile as the tower's indices; -1 for a value outside the vocabulary. */
  profile(values: ProfileValues): UserProfile {
    return {
      ageBand: this.vocab.ageBands.get(values.age_band) ?? -1,
      country: this.vocab.countries.get(values.country) ?? -1,
      device: this.vocab.devices.get(values.device) ?? -1,
    };
  }

  /** The history's items as indices, unknown items left out. */
  historyIndices(items: readonly string[]): Int32Array {
    const out: number[] = [];
    for (const item of items) {
      const index = this.items.get(item);
      if (index !== undefined) out.push(index);
    }
    return Int32Array.from(out);
  }

  /**
   * The user embedding. Calls run one after another: the tower's single-user inputs are shared
   * buffers, rewritten by each call.
   */
  encode(query: UserQuery): Promise<Float32Array> {
    const tower = this.tower;
    if (tower === undefined) return Promise.reject(new Error('the user tower is not loaded'));
    const run = this.queue.then(
      () => tower.encodeUser(query),
      () => tower.encodeUser(query),
    );
    this.queue = run.catch(() => undefined);
    // The output tensor is onnxruntime's own: copy it before the next call can run.
    return run.then((embedding) => Float32Array.from(embedding));
  }
}
