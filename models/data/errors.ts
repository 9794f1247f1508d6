/**
 * Failures of the data layer: one class per failure mode, each with a stable `code`.
 */

/** Stable codes of the data layer's errors. */
export const DataErrorCode = {
  /** An option passed to a data function is invalid; `option` names it. */
  InvalidOption: 'data_invalid_option',
  /** A data set on disk is missing, unreadable or breaks the format; `path` names the file. */
  InvalidDataset: 'data_invalid_dataset',
} as const;
export type DataErrorCode = (typeof DataErrorCode)[keyof typeof DataErrorCode];

/** An option is invalid. Thrown (or rejected) before any work starts. */
export class DataOptionError extends Error {
  override readonly name = 'DataOptionError';
  readonly code = DataErrorCode.InvalidOption;
  readonly option: string;

  constructor(option: string, message: string, options: { cause?: unknown } = {}) {
    super(`${option} ${message}`, options);
    this.option = option;
  }
}

/** A data set folder or file cannot be read as the format describes. */
export class DatasetFormatError extends Error {
  override readonly name = 'DatasetFormatError';
  readonly code = DataErrorCode.InvalidDataset;
  readonly path: string;

  constructor(path: string, message: string, options: { cause?: unknown } = {}) {
    super(`${path}: ${message}`, options);
    this.path = path;
  }
}
