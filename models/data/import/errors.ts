/**
 * The one fatal failure of an import: the input cannot become a data set at all (a required file
 * or column is missing, an option is malformed). Bad rows are not errors; they are counted in the
 * import report.
 */

/** Stable code of every {@link ImportError}. */
export const IMPORT_FAILED = 'import_failed';

export interface ImportErrorOptions {
  /** The file at fault, as the user named it or relative to the imported folder. */
  file?: string;
  /** The column, mapping key or option at fault (`movieId`, `--map`, `user`). */
  field?: string;
  cause?: unknown;
}

export class ImportError extends Error {
  override readonly name = 'ImportError';
  readonly code = IMPORT_FAILED;
  readonly file: string | undefined;
  readonly field: string | undefined;

  constructor(message: string, options: ImportErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.file = options.file;
    this.field = options.field;
  }
}
