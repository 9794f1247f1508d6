/**
 * What every benchmark hands back, and how the harness shows and stores it: a table on stdout, and
 * `.bench/<name>.json` (everything, with the machine it ran on) plus `.bench/<name>.md` (the tables
 * and the checks, short enough to paste into a note).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

/** Flags shared by the benchmarks; each picks its own defaults. */
export interface BenchOptions {
  /** Requests per sequential measurement. */
  requests?: number;
  /** Duration of each throughput measurement. */
  seconds?: number;
  /** How many times each measurement is repeated; the report shows the median. */
  rounds?: number;
  /** Size of the data set, for benchmarks that build one (items in the index). */
  items?: number;
  /** A trained retrieval model whose item embeddings the retrieval benchmark indexes. */
  model?: string;
  /** Only these layouts, for benchmarks that compare several (retrieval: `1`, `2`, `4`, `4x1`). */
  layouts?: string[];
  /** Search worker threads per item shard (retrieval), instead of the shipped config's. */
  workers?: number;
  /** e2e: the world (`smoke`: small synthetic, `full`: 100k users and 1M items). */
  scale?: 'smoke' | 'full';
  /** e2e: one embedded process, or every role in its own process over NATS and Redis. */
  topology?: 'embedded' | 'distributed' | 'nodes';
  /** e2e: open-loop arrival rates, requests per second. */
  rates?: number[];
  /** e2e: search for the highest rate within the p99 limit after the listed rates. */
  search?: boolean;
  /** Write V8 CPU profiles of the node processes a benchmark starts into this directory. */
  profileDir?: string;
  /** Progress lines (stderr), so stdout keeps only the results. */
  progress: (line: string) => void;
}

export interface Benchmark {
  name: string;
  description: string;
  run(options: BenchOptions): Promise<BenchReport>;
}

export interface Table {
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
}

/** A figure held against a target. */
export interface Check {
  name: string;
  value: number;
  /** e.g. `<= 1.3`. */
  target: string;
  pass: boolean;
}

export interface BenchReport {
  name: string;
  /** The settings it ran with (requests, seconds, rounds, ...). */
  params: Record<string, unknown>;
  tables: Table[];
  checks: Check[];
  /** Every measured figure, per round, for later comparison. */
  figures: unknown;
  notes?: string[];
}

export interface Machine {
  cpus: number;
  cpuModel: string;
  memoryGb: number;
  node: string;
  platform: string;
  date: string;
}

export function describeMachine(): Machine {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  };
}

/** Formats a figure for a table: integers as is, small values with a few significant digits. */
export function fmt(value: number, digits = 3): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1000 || Number.isInteger(value)) return Math.round(value).toString();
  return Number(value.toPrecision(digits)).toString();
}

function cells(table: Table): string[][] {
  return table.rows.map((row) => row.map((cell) => (typeof cell === 'number' ? fmt(cell) : cell)));
}

export function textTable(table: Table): string {
  const rows = cells(table);
  const widths = table.columns.map((column, i) =>
    Math.max(column.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  // Text left-aligned, figures right-aligned.
  const line = (row: string[]): string =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [
    table.title,
    line(table.columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ].join('\n');
}

export function markdownTable(table: Table): string {
  const rows = cells(table);
  const line = (row: string[]): string => `| ${row.join(' | ')} |`;
  const align = table.columns.map((_, i) => (i === 0 ? ':--' : '--:'));
  return [`**${table.title}**`, '', line(table.columns), line(align), ...rows.map(line)].join('\n');
}

function checkLine(check: Check): string {
  return `${check.pass ? 'PASS' : 'MISS'}  ${check.name}: ${fmt(check.value)} (target ${check.target})`;
}

/** The report as printed to stdout. */
export function formatText(report: BenchReport, machine: Machine): string {
  const parts = [
    `== ${report.name} == ${machine.cpus} x ${machine.cpuModel}, node ${machine.node}, ${machine.date}`,
    ...report.tables.map(textTable),
  ];
  if (report.checks.length > 0) parts.push(report.checks.map(checkLine).join('\n'));
  if (report.notes !== undefined && report.notes.length > 0) parts.push(report.notes.join('\n'));
  return `${parts.join('\n\n')}\n`;
}

function formatMarkdown(report: BenchReport, machine: Machine): string {
  const params = Object.entries(report.params)
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(', ');
  const parts = [
    `# Benchmark \`${report.name}\``,
    `${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGb} GB, node ${machine.node}, ` +
      `${machine.platform}, ${machine.date}. Settings: ${params}.`,
    ...report.tables.map(markdownTable),
  ];
  if (report.checks.length > 0) {
    parts.push(report.checks.map((check) => `- ${checkLine(check)}`).join('\n'));
  }
  if (report.notes !== undefined && report.notes.length > 0) {
    parts.push(report.notes.map((note) => `- ${note}`).join('\n'));
  }
  return `${parts.join('\n\n')}\n`;
}

/** Writes `<dir>/<name>.json` and `<dir>/<name>.md`; returns their paths. */
export async function writeReport(
  dir: string,
  report: BenchReport,
  machine: Machine,
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, `${report.name}.json`);
  const md = join(dir, `${report.name}.md`);
  await writeFile(json, `${JSON.stringify({ machine, ...report }, null, 2)}\n`);
  await writeFile(md, formatMarkdown(report, machine));
  return [json, md];
}
