/**
 * Reads one input file row by row into a handler, keeping its {@link FileReport}: blank lines are
 * skipped, rows with the wrong number of fields or a handler's complaint are counted as bad, and a
 * missing file or header is fatal.
 */
import { stat } from 'node:fs/promises';

import { ImportError } from './errors.js';
import { forEachRecord } from './records.js';
import type { RecordReaderOptions } from './records.js';
import { BadRowReason, countBad } from './report.js';
import type { FileReport, ImportProgressListener } from './report.js';

/** Handles one data row; returns why it is bad, or undefined when it was imported. */
export type RowHandler = (fields: readonly string[], line: number) => BadRowReason | undefined;

export interface ScanSpec extends RecordReaderOptions {
  path: string;
  report: FileReport;
  /**
   * For a file with a header row: receives the header and returns the row handler (after checking
   * the columns it needs). Rows must have as many fields as the header.
   */
  header?: (columns: readonly string[]) => RowHandler;
  /** For a file without a header: the number of fields every row has, and the row handler. */
  fields?: number;
  row?: RowHandler;
}

/** Fails with a clear message when `path` is not a readable file; returns its size in bytes. */
export async function requireFile(path: string, file: string): Promise<number> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new ImportError(`${file} is not a file`, { file });
    return info.size;
  } catch (err) {
    if (err instanceof ImportError) throw err;
    throw new ImportError(`${file} not found`, { file, cause: err });
  }
}

/**
 * Scans one file into its handler; `onProgress` (when given) hears how far it got every 65,536
 * lines, and once at the end.
 */
export async function scanFile(
  { onProgress }: { onProgress?: ImportProgressListener | undefined },
  spec: ScanSpec,
): Promise<void> {
  const { report } = spec;
  const totalBytes = await requireFile(spec.path, report.file);
  let handle = spec.row;
  let expected = spec.fields;
  let sawHeader = spec.header === undefined;
  await forEachRecord(
    spec.path,
    spec,
    (record) => {
      if (record.error === undefined && record.fields.length === 0) {
        report.blank++;
        return;
      }
      if (!sawHeader && spec.header !== undefined) {
        if (record.error !== undefined) {
          throw new ImportError(`${report.file}: the header row has an unclosed quote`, {
            file: report.file,
          });
        }
        const columns = record.fields.map((c) => c.trim());
        handle = spec.header(columns);
        expected = columns.length;
        sawHeader = true;
        return;
      }
      report.read++;
      let reason: BadRowReason | undefined;
      if (record.error !== undefined) reason = BadRowReason.UnterminatedQuote;
      else if (expected !== undefined && record.fields.length !== expected) {
        reason = BadRowReason.FieldCount;
      } else reason = handle?.(record.fields, record.line);
      if (reason === undefined) report.imported++;
      else countBad(report, record.line, reason);
    },
    onProgress === undefined
      ? undefined
      : (bytes) => {
          onProgress({
            file: report.file,
            bytes: Math.min(bytes, totalBytes),
            totalBytes,
            rows: report.read,
          });
        },
  );
  onProgress?.({ file: report.file, bytes: totalBytes, totalBytes, rows: report.read, done: true });
  if (!sawHeader) {
    throw new ImportError(`${report.file} is empty: expected a header row`, { file: report.file });
  }
}

/**
 * Finds the index of each wanted column in a header. `wanted` maps a role (for messages) to the
 * column name (roles left undefined are not looked up); names match exactly first, then ignoring
 * case. Throws naming the first missing column.
 */
export function columnIndices<M extends Record<string, string | undefined>>(
  header: readonly string[],
  wanted: M,
  file: string,
): { [K in keyof M]: undefined extends M[K] ? number | undefined : number } {
  const out: Record<string, number> = {};
  for (const [role, name] of Object.entries(wanted)) {
    if (name === undefined) continue;
    let index = header.indexOf(name);
    if (index < 0) {
      const lower = name.toLowerCase();
      index = header.findIndex((h) => h.toLowerCase() === lower);
    }
    if (index < 0) {
      const shown = header.length > 20 ? [...header.slice(0, 20), '...'] : header;
      throw new ImportError(
        `${file}: required column "${name}" is missing (columns: ${shown.join(', ')})`,
        { file, field: name },
      );
    }
    out[role] = index;
  }
  return out as { [K in keyof M]: undefined extends M[K] ? number | undefined : number };
}
