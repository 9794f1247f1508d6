/**
 * How long building ranking examples takes on a real data set: a measurement entry point, not a
 * module (nothing imports it). It loads a data set and a retrieval artifact trained on its
 * temporal split, builds the examples of the training period `--rounds` times (the same queries
 * each time) and prints the median of each phase: candidates and labels, stream replay, batch
 * tables, feature reads, row assembly.
 *
 *   npx tsx test/load/ranking-examples.ts --data <dataset dir> --model <retrieval model dir>
 *     [--queries 2000] [--candidates 100] [--horizon-hours 24] [--rounds 3]
 *     [--retrieval-batch 256] [--all-events]
 *
 * `--retrieval-batch` scores that many queries per call of the two-tower model (which does not
 * depend on the query time: only the scores' last bits change); `--all-events` replays every event
 * instead of only those the planned reads can show.
 */
import { parseArgs } from 'node:util';

import { readDataset } from '../../models/data/dataset-io.js';
import { temporalSplit } from '../../models/data/split.js';
import { loadRetrievalArtifact } from '../../models/retrieval/artifact.js';
import { userProfiles } from '../../models/retrieval/features.js';
import { TwoTowerScorer } from '../../models/retrieval/two-tower-scorer.js';
import { loadFeatureDefinitions } from '../../runtime/features/definitions.js';
import { buildRankingExamples } from '../../models/ranking/examples.js';
import type { RankingExamples } from '../../models/ranking/examples.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    model: { type: 'string' },
    queries: { type: 'string', default: '2000' },
    candidates: { type: 'string', default: '100' },
    'horizon-hours': { type: 'string', default: '24' },
    rounds: { type: 'string', default: '3' },
    definitions: { type: 'string', default: 'configs/features.yaml' },
    'all-events': { type: 'boolean', default: false },
    'retrieval-batch': { type: 'string', default: '256' },
  },
});
if (values.data === undefined || values.model === undefined) {
  process.stderr.write(
    'usage: npx tsx test/load/ranking-examples.ts --data <dataset dir> --model <retrieval model dir>\n',
  );
  process.exit(2);
}

const dataset = await readDataset(values.data);
const loaded = await loadRetrievalArtifact(values.model);
// The examples come from the part the retrieval model trained on; its test part stays unread.
const cutoff = loaded.manifest.split.cutoff;
const split = temporalSplit(dataset, cutoff === null ? {} : { cutoff });
const retrieval = new TwoTowerScorer(loaded.model, loaded.itemEmbeddings, {
  profiles: userProfiles(dataset.users),
});
const definitions = loadFeatureDefinitions(values.definitions);

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};
const runs: RankingExamples[] = [];
for (let round = 0; round < Number(values.rounds); round++) {
  runs.push(
    await buildRankingExamples({
      dataset,
      retrieval,
      definitions,
      to: split.cutoff,
      queries: Number(values.queries),
      candidates: Number(values.candidates),
      horizonMs: Number(values['horizon-hours']) * 3_600_000,
      planReplay: !values['all-events'],
      retrievalBatch: Number(values['retrieval-batch']),
    }),
  );
  const last = runs[runs.length - 1] as RankingExamples;
  process.stderr.write(`round ${round + 1}: ${(last.stats.totalMs / 1000).toFixed(1)} s\n`);
}

const s = (pick: (r: RankingExamples) => number): string =>
  (median(runs.map(pick)) / 1000).toFixed(2);
const first = runs[0] as RankingExamples;
const lines = [
  `data set ${dataset.manifest.name}: ${dataset.events.length} events, training part ${split.train.length} (before ${new Date(split.cutoff).toISOString()})`,
  `queries drawn ${first.stats.points}; kept ${first.stats.groups} (no positive ${first.stats.withoutPositives}, no candidate ${first.stats.withoutCandidates}); rows ${first.rows} × ${first.schema.size} features; positives ${first.stats.positives}`,
  `events replayed ${first.stats.store.events} of ${split.train.length}; batch snapshots ${first.stats.store.snapshots}; batch rows written ${first.stats.store.batchRows}`,
  '',
  `median of ${runs.length} rounds (seconds)`,
  `  total                     ${s((r) => r.stats.totalMs)}`,
  `  candidates and labels     ${s((r) => r.stats.retrievalMs)}`,
  `  stream replay             ${s((r) => r.stats.store.replayMs)}`,
  `  batch tables              ${s((r) => r.stats.store.batchMs)}`,
  `  feature reads             ${s((r) => r.stats.store.readMs)}`,
  `  row assembly              ${s((r) => r.stats.assembleMs)}`,
  `  rows per second           ${Math.round(median(runs.map((r) => r.rows / (r.stats.totalMs / 1000))))}`,
];
process.stdout.write(`${lines.join('\n')}\n`);
