/**
 * Presenting an evaluation: recall ratios against a reference scorer (popularity, the oracle), a
 * plain-text table for the terminal, and a JSON document for files.
 */
import type { RetrievalEvaluation, ScorerResult } from './evaluate.js';

export type Segment = 'all' | 'warm' | 'cold';

/**
 * recall@K of each scorer divided by recall@K of `reference`, per K (in the order of `ks`), over
 * one segment of users. `null` where the reference's recall is 0; `undefined` when no scorer is
 * named `reference`.
 */
export function recallRatios(
  evaluation: RetrievalEvaluation,
  reference: string,
  segment: Segment = 'all',
): Record<string, Array<number | null>> | undefined {
  const ref = evaluation.scorers.find((s) => s.name === reference);
  if (ref === undefined) return undefined;
  const out: Record<string, Array<number | null>> = {};
  for (const scorer of evaluation.scorers) {
    out[scorer.name] = scorer[segment].metrics.map((m, i) => {
      const base = ref[segment].metrics[i]?.recall ?? 0;
      return base === 0 ? null : m.recall / base;
    });
  }
  return out;
}

export interface ReportOptions {
  /** Scorer the "× name" column divides by. @default 'popularity' */
  readonly baseline?: string;
  /** Scorer the "/ name" column divides by, when present. @default 'oracle' */
  readonly oracle?: string;
}

/**
 * The evaluation as text: the protocol, then per segment (all users, warm, cold) one table with a
 * row per K and scorer and columns recall, recall × baseline, recall / oracle, NDCG, hit rate,
 * coverage; then the time each scorer took.
 */
export function formatEvaluation(
  evaluation: RetrievalEvaluation,
  options: ReportOptions = {},
): string {
  const baseline = options.baseline ?? 'popularity';
  const oracle = options.oracle ?? 'oracle';
  const lines: string[] = [wrap(evaluation.protocol.description, 100), ''];
  const segments: Array<[Segment, string]> = [
    ['all', 'all test users'],
    ['warm', 'warm users (with training events)'],
    ['cold', 'cold users (no training events)'],
  ];
  for (const [segment, title] of segments) {
    const users = evaluation.scorers[0]?.[segment].users ?? 0;
    if (users === 0) continue;
    const vsBaseline = recallRatios(evaluation, baseline, segment);
    const vsOracle = recallRatios(evaluation, oracle, segment);
    const header = ['scorer', 'K', 'recall'];
    if (vsBaseline !== undefined) header.push(`× ${baseline}`);
    if (vsOracle !== undefined) header.push(`/ ${oracle}`);
    header.push('ndcg', 'hit rate', 'coverage');
    const rows: string[][] = [];
    evaluation.ks.forEach((k, i) => {
      for (const scorer of evaluation.scorers) {
        const m = scorer[segment].metrics[i];
        if (m === undefined) continue;
        const row = [scorer.name, String(k), fixed(m.recall)];
        if (vsBaseline !== undefined) row.push(ratio(vsBaseline[scorer.name]?.[i]));
        if (vsOracle !== undefined) row.push(ratio(vsOracle[scorer.name]?.[i]));
        row.push(fixed(m.ndcg), fixed(m.hitRate), fixed(m.coverage));
        rows.push(row);
      }
    });
    lines.push(`${title}: ${users}`, ...table(header, rows), '');
  }
  lines.push(
    ...table(
      ['scorer', 'seconds', 'users/s'],
      evaluation.scorers.map((s) => [s.name, s.seconds.toFixed(2), usersPerSecond(s)]),
    ),
  );
  return `${lines.join('\n')}\n`;
}

function usersPerSecond(s: ScorerResult): string {
  return s.seconds > 0 ? Math.round(s.all.users / s.seconds).toString() : '-';
}

function fixed(value: number): string {
  return value.toFixed(4);
}

function ratio(value: number | null | undefined): string {
  return value === null || value === undefined ? '-' : `${value.toFixed(2)}`;
}

/** Left-aligned text columns, right-aligned numbers, two spaces apart. */
function table(header: readonly string[], rows: readonly string[][]): string[] {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  return [header, ...rows].map((row) =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

/** The evaluation as a JSON document, with the recall ratios the table shows. */
export function evaluationJson(
  evaluation: RetrievalEvaluation,
  options: ReportOptions = {},
): Record<string, unknown> {
  const baseline = options.baseline ?? 'popularity';
  const oracle = options.oracle ?? 'oracle';
  const ratios = (reference: string) => ({
    reference,
    all: recallRatios(evaluation, reference, 'all'),
    warm: recallRatios(evaluation, reference, 'warm'),
    cold: recallRatios(evaluation, reference, 'cold'),
  });
  return {
    format: 'recsys-retrieval-eval',
    version: 1,
    ...evaluation,
    recallRatios: {
      ...(recallRatios(evaluation, baseline) === undefined ? {} : { baseline: ratios(baseline) }),
      ...(recallRatios(evaluation, oracle) === undefined ? {} : { oracle: ratios(oracle) }),
    },
  };
}
