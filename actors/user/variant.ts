/**
 * Which experiment variant serves a user. One default variant for now, scored by the ranker slot
 * of `recommend.ranker_slot`; the experiment actors will replace this function with the
 * assignment of the live experiment (a pure function of the user id and the config they watch).
 */
import type { RecommendConfig } from '../../runtime/config/schema.js';

export interface Variant {
  /** The name a reply and its impression carry (`variant`). */
  readonly name: string;
  /** The rank group (model slot) that scores this variant's candidates. */
  readonly rankerSlot: string;
}

export const DEFAULT_VARIANT = 'default';

/** The variant that serves `userId`. */
export function chooseVariant(
  userId: string,
  config: Pick<RecommendConfig, 'rankerSlot'>,
): Variant {
  void userId;
  return { name: DEFAULT_VARIANT, rankerSlot: config.rankerSlot };
}
