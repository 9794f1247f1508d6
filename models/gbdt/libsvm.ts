/**
 * Readers for the text data files LightGBM's command-line program takes: LibSVM (`label idx:value
 * ...`), tab-separated values with the label first, and the `.query` file of group sizes. They
 * give dense row-major rows with values as LightGBM reads them (its spellings of NaN and infinity,
 * absent LibSVM entries as 0), so a prediction here sees the same numbers LightGBM saw.
 */
import { BadRequestError } from '../../runtime/errors.js';

/** Rows with a label each. */
export interface LabeledRows {
  readonly rows: number;
  /** Values per row. */
  readonly width: number;
  /** Row-major `rows × width`. */
  readonly features: Float64Array;
  readonly labels: Float64Array;
}

export interface LibSvmOptions {
  /**
   * Values per row. Entries at or past it are dropped, as LightGBM's predictor drops features the
   * model does not have.
   * @default the largest index in the text plus one
   */
  readonly width?: number;
}

export interface TsvOptions {
  /**
   * Values per row (feature columns after the label). A line with another number of columns is
   * an error.
   * @default the first line's column count minus one
   */
  readonly width?: number;
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * A value as LightGBM's parser reads it: a decimal number, `nan` / `na` / `null` (any case) as
 * NaN, `inf` / `infinity` with an optional sign. Returns undefined for anything else.
 */
export function parseLightGbmNumber(token: string): number | undefined {
  if (NUMBER.test(token)) return Number(token);
  const lower = token.toLowerCase();
  if (lower === 'nan' || lower === 'na' || lower === 'null' || lower === '-nan') return NaN;
  const unsigned = lower.startsWith('-') || lower.startsWith('+') ? lower.slice(1) : lower;
  if (unsigned === 'inf' || unsigned === 'infinity') {
    return lower.startsWith('-') ? -Infinity : Infinity;
  }
  return undefined;
}

function bad(format: string, line: number, message: string): BadRequestError {
  return new BadRequestError(format, `line ${line}: ${message}`, { data: { line } });
}

function checkWidth(width: number | undefined): void {
  if (width !== undefined && (!Number.isInteger(width) || width < 0)) {
    throw new BadRequestError('width', 'must be a non-negative integer');
  }
}

/** Lines of a text file without the final empty one; `\r\n` endings accepted. */
function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Reads LibSVM text: one row per line, `label index:value ...`, indices from 0. */
export function parseLibSvm(text: string, options: LibSvmOptions = {}): LabeledRows {
  checkWidth(options.width);
  const lines = splitLines(text);
  const labels = new Float64Array(lines.length);
  const entries: Array<{ indices: Int32Array; values: Float64Array }> = [];
  let maxIndex = -1;
  lines.forEach((line, r) => {
    const tokens = line.trim().split(/[ \t]+/);
    const label = parseLightGbmNumber(tokens[0] ?? '');
    if (label === undefined || line.trim() === '') {
      throw bad('libsvm', r + 1, `the label ${JSON.stringify(tokens[0] ?? '')} is not a number`);
    }
    labels[r] = label;
    const indices: number[] = [];
    const values: number[] = [];
    for (let i = 1; i < tokens.length; i++) {
      const token = tokens[i] as string;
      const colon = token.indexOf(':');
      const key = colon < 0 ? '' : token.slice(0, colon);
      // LightGBM takes query ids from the .query file; a qid token carries no feature.
      if (key === 'qid') continue;
      const index = /^\d+$/.test(key) ? Number(key) : NaN;
      const value = parseLightGbmNumber(token.slice(colon + 1));
      if (!Number.isSafeInteger(index) || value === undefined) {
        throw bad('libsvm', r + 1, `${JSON.stringify(token)} is not index:value`);
      }
      if (options.width !== undefined && index >= options.width) continue;
      indices.push(index);
      values.push(value);
      if (index > maxIndex) maxIndex = index;
    }
    entries.push({ indices: Int32Array.from(indices), values: Float64Array.from(values) });
  });
  const width = options.width ?? maxIndex + 1;
  const features = new Float64Array(lines.length * width);
  entries.forEach(({ indices, values }, r) => {
    for (let i = 0; i < indices.length; i++) {
      features[r * width + (indices[i] as number)] = values[i] as number;
    }
  });
  return { rows: lines.length, width, features, labels };
}

/** Reads tab-separated values: the label in the first column, then one column per feature. */
export function parseTsv(text: string, options: TsvOptions = {}): LabeledRows {
  checkWidth(options.width);
  const lines = splitLines(text);
  const width = options.width ?? Math.max(0, (lines[0]?.split('\t').length ?? 1) - 1);
  const labels = new Float64Array(lines.length);
  const features = new Float64Array(lines.length * width);
  lines.forEach((line, r) => {
    const cells = line.split('\t');
    if (cells.length !== width + 1) {
      throw bad('tsv', r + 1, `${cells.length} columns, expected ${width + 1} (label + features)`);
    }
    cells.forEach((cell, c) => {
      const value = parseLightGbmNumber(cell.trim());
      if (value === undefined) {
        throw bad('tsv', r + 1, `column ${c + 1}: ${JSON.stringify(cell)} is not a number`);
      }
      if (c === 0) labels[r] = value;
      else features[r * width + c - 1] = value;
    });
  });
  return { rows: lines.length, width, features, labels };
}

/** Reads a `.query` file: one group size (documents of one query) per line. */
export function parseQueryFile(text: string): Int32Array {
  const lines = splitLines(text);
  return Int32Array.from(lines, (line, i) => {
    const size = /^\d+$/.test(line.trim()) ? Number(line.trim()) : NaN;
    if (!Number.isSafeInteger(size) || size <= 0 || size > 0x7fffffff) {
      throw bad('query', i + 1, `${JSON.stringify(line)} is not a positive group size`);
    }
    return size;
  });
}
