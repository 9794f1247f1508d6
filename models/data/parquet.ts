/**
 * A small columnar layer over Parquet (hyparquet to read, hyparquet-writer to write): flat files
 * of a few primitive column kinds, written one row group at a time and read back one row group at
 * a time, so neither side ever holds a whole large file in memory.
 */
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead } from 'hyparquet';
import type { AsyncBuffer, FileMetaData } from 'hyparquet';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import type { ColumnSource, SchemaElement } from 'hyparquet-writer';
import { DatasetFormatError } from './errors.js';

/** The column kinds the data layer writes. A const object plus a same-named type. */
export const ColumnKind = {
  /** UTF-8 string (BYTE_ARRAY, logical type STRING). */
  String: 'string',
  /** Signed 32-bit integer. */
  Int32: 'int32',
  /** Unsigned 8-bit integer, stored as INT32 with logical type INTEGER(8, unsigned). */
  Uint8: 'uint8',
  /** 32-bit float. */
  Float32: 'float32',
  /** 64-bit float. */
  Float64: 'float64',
  /** Milliseconds since the epoch, UTC (INT64, logical type TIMESTAMP(MILLIS, UTC)). */
  TimestampMs: 'timestamp_ms',
} as const;
export type ColumnKind = (typeof ColumnKind)[keyof typeof ColumnKind];

export interface ColumnSpec {
  readonly name: string;
  readonly kind: ColumnKind;
  /** Whether the column may hold nulls (NaN timestamps and floats, null strings). @default false */
  readonly nullable?: boolean;
  /** Delta encoding, for sorted integer or timestamp columns. @default false */
  readonly delta?: boolean;
  /** Min/max statistics per row group (lets readers skip row groups). @default false */
  readonly statistics?: boolean;
  /** What the column holds, for the manifest's schema. */
  readonly doc?: string;
}

/** Values of one column for one row group. Nullable columns take `null` (strings) or NaN. */
export type ColumnValues =
  readonly (string | null)[] | Int32Array | Uint8Array | Float32Array | Float64Array;

/**
 * A column as the manifest documents it: its kind, `?` when nullable, then what it holds, e.g.
 * `timestamp_ms?: creation time`.
 */
export function describeColumn(spec: ColumnSpec): string {
  const type = `${spec.kind}${spec.nullable === true ? '?' : ''}`;
  return spec.doc === undefined ? type : `${type}: ${spec.doc}`;
}

export function describeColumns(specs: readonly ColumnSpec[]): Record<string, string> {
  return Object.fromEntries(specs.map((spec) => [spec.name, describeColumn(spec)]));
}

function schemaElement(spec: ColumnSpec): SchemaElement {
  const repetition_type = spec.nullable === true ? 'OPTIONAL' : 'REQUIRED';
  switch (spec.kind) {
    case ColumnKind.String:
      return {
        name: spec.name,
        type: 'BYTE_ARRAY',
        converted_type: 'UTF8',
        logical_type: { type: 'STRING' },
        repetition_type,
      };
    case ColumnKind.Int32:
      return { name: spec.name, type: 'INT32', repetition_type };
    case ColumnKind.Uint8:
      return {
        name: spec.name,
        type: 'INT32',
        converted_type: 'UINT_8',
        logical_type: { type: 'INTEGER', bitWidth: 8, isSigned: false },
        repetition_type,
      };
    case ColumnKind.Float32:
      return { name: spec.name, type: 'FLOAT', repetition_type };
    case ColumnKind.Float64:
      return { name: spec.name, type: 'DOUBLE', repetition_type };
    case ColumnKind.TimestampMs:
      return {
        name: spec.name,
        type: 'INT64',
        converted_type: 'TIMESTAMP_MILLIS',
        logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MILLIS' },
        repetition_type,
      };
  }
}

/** Turns one row group's values into what hyparquet-writer encodes for the column's kind. */
function encodeValues(spec: ColumnSpec, values: ColumnValues, rows: number): ColumnSource['data'] {
  if (values.length < rows) {
    throw new RangeError(`column ${spec.name} has ${values.length} values, expected ${rows}`);
  }
  const nullable = spec.nullable === true;
  switch (spec.kind) {
    case ColumnKind.String: {
      if (!Array.isArray(values)) throw new TypeError(`column ${spec.name} must be strings`);
      const strings = values as readonly (string | null)[];
      if (!nullable && strings.slice(0, rows).some((v) => v === null)) {
        throw new TypeError(`column ${spec.name} is not nullable`);
      }
      return strings.length === rows ? (strings as (string | null)[]) : strings.slice(0, rows);
    }
    case ColumnKind.TimestampMs: {
      const numbers = values as Float64Array;
      if (!nullable) {
        const out = new BigInt64Array(rows);
        for (let i = 0; i < rows; i++) out[i] = BigInt(Math.round(numbers[i] ?? 0));
        return out;
      }
      const out = new Array<bigint | null>(rows);
      for (let i = 0; i < rows; i++) {
        const v = numbers[i] ?? NaN;
        out[i] = Number.isNaN(v) ? null : BigInt(Math.round(v));
      }
      return out;
    }
    case ColumnKind.Int32:
    case ColumnKind.Uint8: {
      const ints = values as Int32Array | Uint8Array;
      if (ints instanceof Int32Array) return ints.length === rows ? ints : ints.slice(0, rows);
      return Int32Array.from(ints.subarray(0, rows));
    }
    case ColumnKind.Float32:
    case ColumnKind.Float64: {
      const floats = values as Float32Array | Float64Array;
      if (!nullable) return floats.length === rows ? floats : floats.slice(0, rows);
      const out = new Array<number | null>(rows);
      for (let i = 0; i < rows; i++) {
        const v = floats[i] ?? NaN;
        out[i] = Number.isNaN(v) ? null : v;
      }
      return out;
    }
  }
}

/**
 * hyparquet-writer's in-memory byte writer, drained to a file after every row group, so memory
 * holds at most one encoded row group.
 */
class FileSink extends ByteWriter {
  constructor(private readonly handle: FileHandle) {
    super(1 << 20);
  }

  async drain(): Promise<void> {
    if (this.index === 0) return;
    await this.handle.write(new Uint8Array(this.buffer, 0, this.index));
    this.index = 0;
  }

  override finish(): void {
    // The async drain happens in ParquetFileWriter.close; finish only closes the footer.
  }
}

export interface ParquetFileWriterOptions {
  /** Key-value metadata stored in the file footer (vocabularies, format version). */
  kvMetadata?: Record<string, string>;
}

/** Writes one Parquet file, one row group per {@link ParquetFileWriter.writeRowGroup} call. */
export class ParquetFileWriter {
  private rowCount = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    readonly columns: readonly ColumnSpec[],
    private readonly handle: FileHandle,
    private readonly sink: FileSink,
    private readonly writer: ParquetWriter,
  ) {}

  static async open(
    path: string,
    columns: readonly ColumnSpec[],
    options: ParquetFileWriterOptions = {},
  ): Promise<ParquetFileWriter> {
    const handle = await open(path, 'w');
    const sink = new FileSink(handle);
    const kv = Object.entries(options.kvMetadata ?? {}).map(([key, value]) => ({ key, value }));
    const writer = new ParquetWriter({
      writer: sink,
      schema: [{ name: 'root', num_children: columns.length }, ...columns.map(schemaElement)],
      kvMetadata: kv,
      // A fixed producer string keeps files byte-identical across library patch releases.
      createdBy: 'recsys',
    });
    return new ParquetFileWriter(path, columns, handle, sink, writer);
  }

  /** Rows written so far. */
  get rows(): number {
    return this.rowCount;
  }

  /** Writes `rows` rows (the first `rows` values of every column) as one row group. */
  async writeRowGroup(data: Readonly<Record<string, ColumnValues>>, rows: number): Promise<void> {
    if (this.closed) throw new Error(`${this.path}: writer is closed`);
    if (rows === 0) return;
    const columnData: ColumnSource[] = this.columns.map((spec) => {
      const values = data[spec.name];
      if (values === undefined) throw new TypeError(`missing column ${spec.name}`);
      return {
        name: spec.name,
        data: encodeValues(spec, values, rows),
        statistics: spec.statistics === true,
        ...(spec.delta === true ? { encoding: 'DELTA_BINARY_PACKED' as const } : {}),
      };
    });
    await this.writer.write({ columnData, rowGroupSize: rows });
    this.rowCount += rows;
    await this.sink.drain();
  }

  /** Writes the footer and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.writer.finish();
      await this.sink.drain();
    } finally {
      await this.handle.close();
    }
  }

  /** Closes the file without a footer (after a failure); the file is not valid Parquet. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/** What a reader learns from a file's footer. */
export interface ParquetFileInfo {
  readonly path: string;
  readonly rows: number;
  /** Row count of each row group, in file order. */
  readonly rowGroups: readonly number[];
  readonly columns: readonly string[];
  readonly kvMetadata: Readonly<Record<string, string>>;
}

/** An open Parquet file: its footer, and row-group-wise column reads. */
export interface ParquetFileReader extends ParquetFileInfo {
  /**
   * Reads the named columns of one row group; `onChunk` gets each column's values with the
   * absolute row index of the first one (a column may arrive in several chunks). Timestamps
   * arrive as numbers (epoch ms), nulls as `null`.
   */
  readRowGroup(
    group: number,
    columns: readonly string[],
    onChunk: (column: string, rowStart: number, values: ArrayLike<unknown>) => void,
  ): Promise<void>;
}

export async function openParquetFile(path: string): Promise<ParquetFileReader> {
  let file: AsyncBuffer;
  let metadata: FileMetaData;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw new DatasetFormatError(path, `cannot read Parquet footer: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const rowGroups = metadata.row_groups.map((g) => Number(g.num_rows));
  const starts: number[] = [];
  let total = 0;
  for (const n of rowGroups) {
    starts.push(total);
    total += n;
  }
  const columns = metadata.schema.slice(1).map((e) => e.name);
  const kvMetadata: Record<string, string> = {};
  for (const { key, value } of metadata.key_value_metadata ?? []) kvMetadata[key] = value ?? '';
  return {
    path,
    rows: Number(metadata.num_rows),
    rowGroups,
    columns,
    kvMetadata,
    async readRowGroup(group, wanted, onChunk) {
      const rowStart = starts[group];
      const size = rowGroups[group];
      if (rowStart === undefined || size === undefined) {
        throw new RangeError(`${path}: no row group ${group}`);
      }
      for (const name of wanted) {
        if (!columns.includes(name)) throw new DatasetFormatError(path, `no column ${name}`);
      }
      try {
        await parquetRead({
          file,
          metadata,
          columns: [...wanted],
          rowStart,
          rowEnd: rowStart + size,
          parsers: { timestampFromMilliseconds: (ms: bigint) => Number(ms) },
          onChunk: (chunk) => onChunk(chunk.columnName, chunk.rowStart, chunk.columnData),
        });
      } catch (err) {
        throw new DatasetFormatError(path, `cannot read row group ${group}: ${String(err)}`, {
          cause: err,
        });
      }
    },
  };
}

/** Streams a file's bytes through `update` (for fingerprints), in file order. */
export async function streamFileBytes(
  path: string,
  update: (chunk: Uint8Array) => void,
): Promise<number> {
  const { size } = await stat(path);
  await new Promise<void>((resolve, reject) => {
    const stream = createReadStream(path, { highWaterMark: 1 << 20 });
    stream.on('data', (chunk) => update(chunk as Buffer));
    stream.on('error', reject);
    stream.on('end', resolve);
  });
  return size;
}
