/**
 * The worker thread a compaction runs in (see `compact.ts`): one task, then the pool is stopped.
 */
import { compactShardSync } from './compact.js';
import type { CompactionResult, CompactionTask } from './compact.js';

export default function run(task: CompactionTask): CompactionResult {
  return compactShardSync(task);
}
