/**
 * Offline evaluation of retrieval: ranking metrics, exact top-K selection, the popularity
 * baselines and the oracle, the evaluation protocol, and its reports.
 */
export {
  CoverageCounter,
  MetricsAccumulator,
  catalogueCoverage,
  hitRateAtK,
  idealDcg,
  ndcgAtK,
  rankingMetrics,
  recallAtK,
  type MetricsAtK,
  type RankingMetrics,
  type TruthSet,
} from './metrics.js';
export { ItemMask, topK, type ItemExclusion, type TopK } from './topk.js';
export {
  OracleScorer,
  PopularityScorer,
  RecentPopularityScorer,
  type RecentPopularityOptions,
  type RecentWindow,
} from './baselines.js';
export {
  describeProtocol,
  evaluateRetrieval,
  groupByUser,
  type EvalProtocol,
  type EvalSplit,
  type EvaluateRetrievalOptions,
  type RetrievalEvaluation,
  type ScorerResult,
  type SegmentResult,
  type UserEvents,
} from './evaluate.js';
export {
  evaluationJson,
  formatEvaluation,
  recallRatios,
  type ReportOptions,
  type Segment,
} from './report.js';
