/**
 * A streaming reader of delimited text files: CSV (RFC 4180 quoting), TSV, `|` and the `::` of
 * MovieLens 1M. Files are read line by line with node:readline, so a 25M-row log never sits in
 * memory as one string.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

/** Field separators the importers understand. */
export type Delimiter = ',' | ';' | '\t' | '|' | '::';

/** Text encodings of the inputs: MovieLens 100k and 1M are ISO-8859-1, the rest UTF-8. */
export type TextEncoding = 'utf8' | 'latin1';

export interface RecordReaderOptions {
  delimiter: Delimiter;
  /** @default 'utf8' */
  encoding?: TextEncoding;
  /**
   * Honour double quotes around fields (a quoted field may hold the delimiter, `""` for a quote,
   * and line breaks). @default true for `,` and `;`, false otherwise (MovieLens' `|`, tab and
   * `::` files have no quoting, and titles there may hold a bare `"`).
   */
  quotes?: boolean;
}

/** One record of a file. `fields` is empty for a blank line. */
export interface TextRecord {
  /** 1-based line number where the record starts. */
  line: number;
  fields: string[];
  /** Set when the record could not be parsed (a quote opened and never closed). */
  error?: 'unterminated_quote';
}

/** A quoted field may span lines, but not more than this many: past it the quote is unclosed. */
const MAX_RECORD_LINES = 1000;

/**
 * Turns lines into records: drops a UTF-8 byte-order mark on line 1, joins the lines of a quoted
 * field that holds line breaks, and numbers records by the line they start on.
 */
export class RecordParser {
  private readonly delimiter: Delimiter;
  private readonly quotes: boolean;
  private lineNo = 0;
  // A record whose quoted field continues on the next line: its text so far and first line.
  private pending: string | undefined;
  private pendingLine = 0;

  constructor(options: RecordReaderOptions) {
    this.delimiter = options.delimiter;
    this.quotes = options.quotes ?? (options.delimiter === ',' || options.delimiter === ';');
  }

  /** The next line of the file; returns the record it completes, if any. */
  push(raw: string): TextRecord | undefined {
    const lineNo = ++this.lineNo;
    let text = lineNo === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
    const start = this.pending === undefined ? lineNo : this.pendingLine;
    if (this.pending !== undefined) text = `${this.pending}\n${text}`;
    else if (text === '') return { line: lineNo, fields: [] };
    if (!this.quotes || !text.includes('"')) {
      this.pending = undefined;
      return { line: start, fields: splitPlain(text, this.delimiter) };
    }
    const fields = parseQuoted(text, this.delimiter);
    if (fields !== undefined) {
      this.pending = undefined;
      return { line: start, fields };
    }
    if (lineNo - start + 1 >= MAX_RECORD_LINES) {
      this.pending = undefined;
      return { line: start, fields: [], error: 'unterminated_quote' };
    }
    this.pending = text;
    this.pendingLine = start;
    return undefined;
  }

  /** The end of the file; returns the record left open by an unclosed quote, if any. */
  end(): TextRecord | undefined {
    if (this.pending === undefined) return undefined;
    this.pending = undefined;
    return { line: this.pendingLine, fields: [], error: 'unterminated_quote' };
  }
}

/**
 * Calls `onRecord` for every record of `path`, in order. Blank lines come out as records with no
 * fields (so callers can count them), a UTF-8 byte-order mark is dropped, and `\r\n` line ends
 * are accepted. The bulk path of the importers: no promise per record. `onBytes`, when given, hears
 * how far into the file the reader is every 65,536 lines.
 */
export async function forEachRecord(
  path: string,
  options: RecordReaderOptions,
  onRecord: (record: TextRecord) => void,
  onBytes?: (bytesRead: number) => void,
): Promise<void> {
  const parser = new RecordParser(options);
  const stream = createReadStream(path, { encoding: options.encoding ?? 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let count = 0;
  try {
    for await (const raw of lines) {
      const record = parser.push(raw);
      if (record !== undefined) onRecord(record);
      if (onBytes !== undefined && (++count & 0xffff) === 0) onBytes(stream.bytesRead);
    }
    const last = parser.end();
    if (last !== undefined) onRecord(last);
  } finally {
    lines.close();
    stream.destroy();
  }
}

/** The records of `path` as an async iterable; see {@link forEachRecord}. */
export async function* readRecords(
  path: string,
  options: RecordReaderOptions,
): AsyncGenerator<TextRecord> {
  const parser = new RecordParser(options);
  const stream = createReadStream(path, { encoding: options.encoding ?? 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const raw of lines) {
      const record = parser.push(raw);
      if (record !== undefined) yield record;
    }
    const last = parser.end();
    if (last !== undefined) yield last;
  } finally {
    lines.close();
    stream.destroy();
  }
}

function splitPlain(text: string, delimiter: Delimiter): string[] {
  // readline already drops `\r\n`; a lone trailing `\r` (a file cut mid line end) goes too.
  const line = text.endsWith('\r') ? text.slice(0, -1) : text;
  return line.split(delimiter);
}

/**
 * Splits one CSV record with RFC 4180 quoting. Returns undefined when a quoted field is still open
 * at the end of `text` (the record continues on the next line). Lenient where files in the wild
 * are: a quote inside an unquoted field is kept as a character, and text after a closing quote is
 * appended to the field.
 */
export function parseQuoted(text: string, delimiter: Delimiter): string[] | undefined {
  const fields: string[] = [];
  const n = text.length;
  const step = delimiter.length;
  let field = '';
  let i = 0;
  let atFieldStart = true;
  while (i <= n) {
    if (i === n) {
      fields.push(field);
      break;
    }
    if (atFieldStart && text[i] === '"') {
      // A quoted field: read to the closing quote, `""` standing for one quote.
      i++;
      let closed = false;
      while (i < n) {
        const c = text[i];
        if (c === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          closed = true;
          i++;
          break;
        }
        field += c;
        i++;
      }
      if (!closed) return undefined;
      atFieldStart = false;
      continue;
    }
    if (text.startsWith(delimiter, i)) {
      fields.push(field);
      field = '';
      i += step;
      atFieldStart = true;
      continue;
    }
    const c = text[i];
    if (!(c === '\r' && i === n - 1)) field += c;
    atFieldStart = false;
    i++;
  }
  return fields;
}
