/**
 * The protocol of the `features` actor: the feature store as a NATS service. Any service (or the
 * `nats` CLI) reads a view for a list of entities with `get`, through the same cache and with the
 * same defaults as the actors that rank; `stats` shows the stream writer's progress and the cache's
 * hit rate. Wire fields are snake_case.
 *
 *   nats req recsys.features.0.get '{"view":"item_realtime","entities":["i1","i2"]}'
 */
import { BadRequestError } from '../../runtime/errors.js';
import { onlyKeys, plainObject } from '../message-fields.js';
import { checkEntityId } from '../../runtime/features/definitions.js';
import type { FeatureRegistry } from '../../runtime/features/definitions.js';
import type { FeatureValue } from '../../runtime/features/types.js';
import type { OnlineFeaturesStats } from '../../runtime/features/online-features.js';
import type { StreamFeatureWriterStats } from '../../runtime/features/stream-writer.js';

export interface GetFeaturesRequest {
  /** A view of `configs/features.yaml`. */
  view: string;
  /** Entity ids (user or item ids, as the view's entity says), 1..{@link MAX_GET_ENTITIES}. */
  entities: string[];
  /** Fields to return; every field of the view when absent. */
  fields?: string[];
}

export interface FeatureRowReply {
  entity: string;
  /** Every field asked for: the stored value, or the field's default when none is stored. */
  values: Record<string, FeatureValue>;
  /** When the stored values were true (epoch ms); null when these are the defaults. */
  event_time_ms: number | null;
}

export interface GetFeaturesReply {
  /** One row per entity, in the order asked. */
  rows: FeatureRowReply[];
  /** The online store could not be read in time: some rows are defaults though values may exist. */
  degraded: boolean;
}

export interface FeaturesStats {
  /** Reads served by this process: cache hits, misses, hit rate, degraded reads, buffered writes. */
  online: OnlineFeaturesStats;
  /** The stream feature writer of this replica; null before it started. */
  writer: (StreamFeatureWriterStats & { lag_seconds: number | null }) | null;
}

export type FeaturesProtocol = {
  get: { request: GetFeaturesRequest; reply: GetFeaturesReply };
  stats: { request: Record<string, never>; reply: FeaturesStats };
};

/** Most entities one `get` may name. */
export const MAX_GET_ENTITIES = 1000;

/** Checks a `get` against the definitions: the view, every entity id and field named. */
export function validateGet(payload: unknown, registry: FeatureRegistry): GetFeaturesRequest {
  const request = plainObject(payload, 'request');
  onlyKeys(request, ['view', 'entities', 'fields']);
  const { view, entities, fields } = request;
  if (typeof view !== 'string') throw new BadRequestError('view', 'must be a string');
  const definition = registry.requestView(view);
  if (!Array.isArray(entities) || entities.length === 0 || entities.length > MAX_GET_ENTITIES) {
    throw new BadRequestError('entities', `must be an array of 1..${MAX_GET_ENTITIES} ids`);
  }
  entities.forEach((entity, i) => checkEntityId(entity, `entities[${i}]`));
  if (fields === undefined) return { view, entities: entities as string[] };
  if (!Array.isArray(fields) || fields.length === 0) {
    throw new BadRequestError('fields', 'must be a non-empty array of field names');
  }
  const known = new Set(definition.fields.map((field) => field.name));
  fields.forEach((field, i) => {
    if (typeof field !== 'string' || !known.has(field)) {
      throw new BadRequestError(
        `fields[${i}]`,
        `unknown field of feature view ${view} (known: ${[...known].join(', ')})`,
      );
    }
  });
  return { view, entities: entities as string[], fields: fields as string[] };
}

export function validateStats(payload: unknown): Record<string, never> {
  if (payload !== undefined) onlyKeys(plainObject(payload, 'request'), []);
  return {};
}
