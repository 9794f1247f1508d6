/**
 * Hashing for placement. `partitionOf` is part of the wire contract: any service, in any language,
 * can compute the subject of a keyed actor as FNV-1a (32-bit) of the key's UTF-8 bytes modulo the
 * partition count. Rendezvous hashing then maps partitions to live hosts so that a join or a leave
 * moves only the partitions that must move.
 */

const encoder = new TextEncoder();

/** FNV-1a, 32-bit, over the UTF-8 bytes of `text`. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  // ASCII keys (the common case) skip the encoder.
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) {
      ascii = false;
      break;
    }
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  if (ascii) return hash >>> 0;
  hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash >>> 0;
}

/** The partition of a key: `fnv1a32(key) % partitions`. */
export function partitionOf(key: string, partitions: number): number {
  return fnv1a32(key) % partitions;
}

/** murmur3's finaliser: spreads FNV's weak low bits so rendezvous weights are well mixed. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The member that owns `resource` under rendezvous (highest random weight) hashing, or `undefined`
 * when there are no members. Ties (practically impossible) go to the smaller member id, so every
 * host computes the same answer from the same member list.
 */
export function rendezvousOwner(resource: string, members: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const member of members) {
    const weight = mix32(fnv1a32(`${member}\u0000${resource}`));
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && member < best)) {
      best = member;
      bestWeight = weight;
    }
  }
  return best;
}
