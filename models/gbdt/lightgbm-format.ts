/**
 * LightGBM 4's text model format, both ways: a model LightGBM trained serves here, and a model
 * trained here opens in LightGBM (`lgb.Booster(model_file=...)`, the CLI's `input_model`).
 *
 * The layout, as LightGBM's `GBDT::SaveModelToString` writes it:
 *
 *     tree
 *     version=v4
 *     num_class=1 / num_tree_per_iteration=1 / label_index=0 / max_feature_idx=N
 *     objective=...            (absent for a model saved without an objective)
 *     average_output           (random forest mode only)
 *     feature_names=... / feature_infos=...
 *     tree_sizes=<bytes of each tree block>
 *
 *     Tree=0
 *     num_leaves=... num_cat=... split_feature= split_gain= threshold= decision_type=
 *     left_child= right_child= leaf_value= leaf_weight= leaf_count= internal_value=
 *     internal_weight= internal_count= [cat_boundaries= cat_threshold=] is_linear=0 shrinkage=
 *     ...
 *     end of trees
 *
 *     feature_importances:     (split counts, largest first)
 *     parameters: ... end of parameters
 *     pandas_categorical:...   (written by the Python package)
 *
 * LightGBM seeks each tree by the byte sizes in `tree_sizes`, so they are computed from the text
 * written. Numbers round-trip exactly: doubles are written in the shortest form that reads back
 * to the same double (LightGBM writes 17 significant digits, or 6 for split gains and internal
 * values; both read back with `Number()` to the values LightGBM holds). A LightGBM file therefore
 * comes back with the same numbers, not always the same spelling: see the parity test.
 *
 * Refused with a `BadRequestError` naming the key and line: multiclass models, linear trees,
 * unknown decision bits, unknown objectives or keys, and files whose structure does not hold.
 * Not kept: `label_index` (always written 0), `monotone_constraints` and `pandas_categorical`
 * (read and dropped: prediction does not use them).
 */
import { BadRequestError } from '../../runtime/errors.js';
import { parseLightGbmNumber } from './libsvm.js';
import type { GbdtModel, GbdtTree } from './model.js';
import { checkGbdtModel, findTreeProblem, numCategorical, objectiveOutput } from './predict.js';

/** The format version written; `v3` files (LightGBM 3) read the same way. */
export const LIGHTGBM_MODEL_VERSION = 'v4';
const READABLE_VERSIONS = new Set(['v3', 'v4']);

const HEADER_KEYS = new Set([
  'version',
  'num_class',
  'num_tree_per_iteration',
  'label_index',
  'max_feature_idx',
  'objective',
  'feature_names',
  'monotone_constraints',
  'feature_infos',
  'tree_sizes',
]);

const TREE_KEYS = new Set([
  'num_leaves',
  'num_cat',
  'split_feature',
  'split_gain',
  'threshold',
  'decision_type',
  'left_child',
  'right_child',
  'leaf_value',
  'leaf_weight',
  'leaf_count',
  'internal_value',
  'internal_weight',
  'internal_count',
  'cat_boundaries',
  'cat_threshold',
  'is_linear',
  'shrinkage',
]);

/** Keys only linear trees have. */
const LINEAR_KEYS = new Set(['leaf_const', 'num_features', 'leaf_features', 'leaf_coeff']);

function formatError(key: string, line: number, message: string): BadRequestError {
  return new BadRequestError(key, `line ${line}: ${message}`, { data: { line } });
}

/** A double as this module writes it: shortest exact form; LightGBM's spellings of NaN, ±inf. */
export function formatDouble(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (Object.is(x, -0)) return '-0';
  return String(x);
}

/** The text split into lines, with their 1-based numbers and sizes in bytes (newline included). */
class LineReader {
  private readonly lines: string[];
  private readonly sizes: number[];
  index = 0;

  constructor(text: string) {
    const raw = text.split('\n');
    // A final newline leaves one empty string behind; it is not a line.
    const hasFinalNewline = raw.length > 1 && raw[raw.length - 1] === '';
    if (hasFinalNewline) raw.pop();
    this.sizes = raw.map((l, i) =>
      i < raw.length - 1 || hasFinalNewline ? Buffer.byteLength(l) + 1 : Buffer.byteLength(l),
    );
    this.lines = raw.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  }

  get done(): boolean {
    return this.index >= this.lines.length;
  }

  /** 1-based number of the current line (one past the end when done). */
  get lineNumber(): number {
    return this.index + 1;
  }

  peek(): string | undefined {
    return this.lines[this.index];
  }

  next(): string {
    const line = this.lines[this.index];
    if (line === undefined) throw formatError('model', this.lineNumber, 'unexpected end of text');
    this.index++;
    return line;
  }

  skipBlank(): void {
    while (this.peek() === '') this.index++;
  }

  /** Bytes of lines [from, to). */
  bytes(from: number, to: number): number {
    let total = 0;
    for (let i = from; i < to; i++) total += this.sizes[i] as number;
    return total;
  }
}

interface Entry {
  readonly value: string;
  readonly line: number;
}

function splitKeyValue(line: string, lineNumber: number): [string, string] {
  const eq = line.indexOf('=');
  if (eq <= 0) throw formatError('model', lineNumber, `expected key=value, got ${clip(line)}`);
  return [line.slice(0, eq), line.slice(eq + 1)];
}

function clip(line: string): string {
  return JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}...` : line);
}

function parseInteger(key: string, entry: Entry, min: number, max: number): number {
  const text = entry.value.trim();
  const value = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) {
    throw formatError(
      key,
      entry.line,
      `${clip(entry.value)} is not an integer in [${min}, ${max}]`,
    );
  }
  return value;
}

function tokens(value: string): string[] {
  return value === '' ? [] : value.split(' ').filter((t) => t !== '');
}

function parseArray<T extends Float64Array | Int32Array | Uint8Array | Uint32Array>(
  key: string,
  entry: Entry | undefined,
  expected: number,
  make: (n: number) => T,
  parse: (token: string) => number | undefined,
): T {
  if (entry === undefined) return make(expected);
  const parts = tokens(entry.value);
  if (parts.length !== expected) {
    throw formatError(key, entry.line, `has ${parts.length} values, expected ${expected}`);
  }
  const out = make(expected);
  parts.forEach((token, i) => {
    const value = parse(token);
    if (value === undefined) {
      throw formatError(key, entry.line, `value ${i}: ${clip(token)} is not a valid number`);
    }
    out[i] = value;
  });
  return out;
}

const INTEGER = /^[+-]?\d+$/;
const intIn =
  (min: number, max: number) =>
  (token: string): number | undefined => {
    if (!INTEGER.test(token)) return undefined;
    const value = Number(token);
    return value >= min && value <= max ? value : undefined;
  };
const int32 = intIn(-0x80000000, 0x7fffffff);

function parseTree(reader: LineReader, treeIndex: number, maxFeatureIdx: number): GbdtTree {
  const headerLine = reader.lineNumber;
  const entries = new Map<string, Entry>();
  while (!reader.done && reader.peek() !== '') {
    const lineNumber = reader.lineNumber;
    const [key, value] = splitKeyValue(reader.next(), lineNumber);
    if (LINEAR_KEYS.has(key)) {
      throw formatError(key, lineNumber, 'linear trees (linear_tree=true) are not supported');
    }
    if (!TREE_KEYS.has(key)) {
      throw formatError(key, lineNumber, `unknown key in Tree=${treeIndex}`);
    }
    if (entries.has(key)) throw formatError(key, lineNumber, `repeated in Tree=${treeIndex}`);
    entries.set(key, { value, line: lineNumber });
  }
  const required = (key: string): Entry => {
    const entry = entries.get(key);
    if (entry === undefined) {
      throw formatError(key, headerLine, `Tree=${treeIndex} has no ${key}`);
    }
    return entry;
  };
  const numLeaves = parseInteger('num_leaves', required('num_leaves'), 1, 0x7fffffff);
  const numCat = parseInteger('num_cat', required('num_cat'), 0, 0x7fffffff);
  const linear = entries.get('is_linear');
  if (linear !== undefined && parseInteger('is_linear', linear, 0, 1) === 1) {
    throw formatError(
      'is_linear',
      linear.line,
      'linear trees (linear_tree=true) are not supported',
    );
  }
  const inner = numLeaves - 1;
  const f64 = (n: number): Float64Array => new Float64Array(n);
  const i32 = (n: number): Int32Array => new Int32Array(n);
  // First the one array every tree has: it proves num_leaves before anything is allocated by it.
  const leafValue = parseArray(
    'leaf_value',
    required('leaf_value'),
    numLeaves,
    f64,
    parseLightGbmNumber,
  );
  // LightGBM reads only the leaf value of a one-leaf tree; the other internal arrays are empty.
  const need = (key: string): Entry | undefined => (inner > 0 ? required(key) : entries.get(key));
  const catBoundaries =
    numCat > 0
      ? parseArray(
          'cat_boundaries',
          required('cat_boundaries'),
          numCat + 1,
          (n) => new Int32Array(n),
          intIn(0, 0x7fffffff),
        )
      : new Int32Array(0);
  const catThreshold =
    numCat > 0
      ? parseArray(
          'cat_threshold',
          required('cat_threshold'),
          catBoundaries[numCat] as number,
          (n) => new Uint32Array(n),
          intIn(0, 0xffffffff),
        )
      : new Uint32Array(0);
  const shrinkageEntry = entries.get('shrinkage');
  let shrinkage = 1;
  if (shrinkageEntry !== undefined) {
    const value = parseLightGbmNumber(shrinkageEntry.value.trim());
    if (value === undefined) {
      throw formatError(
        'shrinkage',
        shrinkageEntry.line,
        `${clip(shrinkageEntry.value)} is not a number`,
      );
    }
    shrinkage = value;
  }
  const tree: GbdtTree = {
    numLeaves,
    splitFeature: parseArray('split_feature', need('split_feature'), inner, i32, int32),
    splitGain: parseArray('split_gain', entries.get('split_gain'), inner, f64, parseLightGbmNumber),
    threshold: parseArray('threshold', need('threshold'), inner, f64, parseLightGbmNumber),
    decisionType: parseArray(
      'decision_type',
      entries.get('decision_type'),
      inner,
      (n) => new Uint8Array(n),
      intIn(0, 127),
    ),
    leftChild: parseArray('left_child', need('left_child'), inner, i32, int32),
    rightChild: parseArray('right_child', need('right_child'), inner, i32, int32),
    internalValue: parseArray(
      'internal_value',
      entries.get('internal_value'),
      inner,
      f64,
      parseLightGbmNumber,
    ),
    internalWeight: parseArray(
      'internal_weight',
      entries.get('internal_weight'),
      inner,
      f64,
      parseLightGbmNumber,
    ),
    internalCount: parseArray('internal_count', entries.get('internal_count'), inner, i32, int32),
    leafValue,
    leafWeight: parseArray(
      'leaf_weight',
      entries.get('leaf_weight'),
      numLeaves,
      f64,
      parseLightGbmNumber,
    ),
    leafCount: parseArray('leaf_count', entries.get('leaf_count'), numLeaves, i32, int32),
    catBoundaries,
    catThreshold,
    shrinkage,
  };
  const problem = findTreeProblem(tree, maxFeatureIdx);
  if (problem !== undefined) {
    throw formatError(
      problem.key,
      entries.get(problem.key)?.line ?? headerLine,
      `Tree=${treeIndex}: ${problem.message}`,
    );
  }
  return tree;
}

/** Reads a model in LightGBM's text format. */
export function parseLightGbmModel(text: string): GbdtModel {
  const reader = new LineReader(text);
  const first = reader.next();
  if (first !== 'tree') {
    throw formatError('model', 1, `expected "tree" (a LightGBM tree model), got ${clip(first)}`);
  }
  const header = new Map<string, Entry>();
  let averageOutput = false;
  for (;;) {
    reader.skipBlank();
    const line = reader.peek();
    if (line === undefined || line.startsWith('Tree=') || line === 'end of trees') break;
    const lineNumber = reader.lineNumber;
    reader.next();
    if (line === 'average_output') {
      averageOutput = true;
      continue;
    }
    const [key, value] = splitKeyValue(line, lineNumber);
    if (!HEADER_KEYS.has(key)) throw formatError(key, lineNumber, 'unknown key in the header');
    if (header.has(key)) throw formatError(key, lineNumber, 'repeated in the header');
    header.set(key, { value, line: lineNumber });
  }
  const required = (key: string): Entry => {
    const entry = header.get(key);
    if (entry === undefined) throw formatError(key, reader.lineNumber, 'missing from the header');
    return entry;
  };
  const version = required('version');
  if (!READABLE_VERSIONS.has(version.value)) {
    throw formatError('version', version.line, `format ${clip(version.value)} is not v3 or v4`);
  }
  const numClass = required('num_class');
  if (parseInteger('num_class', numClass, 1, 0x7fffffff) !== 1) {
    throw formatError(
      'num_class',
      numClass.line,
      `multiclass models (num_class=${numClass.value}) are not supported: one output per row only`,
    );
  }
  const perIteration = header.get('num_tree_per_iteration');
  if (perIteration !== undefined) {
    if (parseInteger('num_tree_per_iteration', perIteration, 1, 0x7fffffff) !== 1) {
      throw formatError(
        'num_tree_per_iteration',
        perIteration.line,
        `${perIteration.value} trees per iteration are not supported: one output per row only`,
      );
    }
  }
  parseInteger('label_index', required('label_index'), -1, 0x7fffffff);
  const maxFeatureIdx = parseInteger('max_feature_idx', required('max_feature_idx'), 0, 0x7ffffffe);
  const objectiveEntry = header.get('objective');
  const objective = objectiveEntry?.value.trim() ?? '';
  if (objectiveEntry !== undefined) {
    try {
      objectiveOutput(objective);
    } catch (err) {
      throw formatError(
        'objective',
        objectiveEntry.line,
        err instanceof Error ? err.message.replace(/^objective: /, '') : String(err),
      );
    }
  }
  const list = (key: string): string[] => {
    const entry = required(key);
    const values = tokens(entry.value);
    if (values.length !== maxFeatureIdx + 1) {
      throw formatError(
        key,
        entry.line,
        `has ${values.length} entries, expected max_feature_idx + 1 = ${maxFeatureIdx + 1}`,
      );
    }
    return values;
  };
  const featureNames = list('feature_names');
  const featureInfos = list('feature_infos');
  const sizesEntry = header.get('tree_sizes');
  const sizes =
    sizesEntry === undefined
      ? undefined
      : tokens(sizesEntry.value).map((token, i) => {
          const size = intIn(1, Number.MAX_SAFE_INTEGER)(token);
          if (size === undefined) {
            throw formatError(
              'tree_sizes',
              sizesEntry.line,
              `value ${i}: ${clip(token)} is not a size`,
            );
          }
          return size;
        });

  const trees: GbdtTree[] = [];
  reader.skipBlank();
  while (reader.peek()?.startsWith('Tree=') === true) {
    const start = reader.index;
    const lineNumber = reader.lineNumber;
    const label = reader.next();
    if (label !== `Tree=${trees.length}`) {
      throw formatError('Tree', lineNumber, `expected Tree=${trees.length}, got ${clip(label)}`);
    }
    trees.push(parseTree(reader, trees.length, maxFeatureIdx));
    reader.skipBlank();
    if (sizes !== undefined) {
      const bytes = reader.bytes(start, reader.index);
      const expected = sizes[trees.length - 1];
      if (bytes !== expected) {
        throw formatError(
          'tree_sizes',
          sizesEntry?.line ?? lineNumber,
          `Tree=${trees.length - 1} takes ${bytes} bytes, tree_sizes says ${expected ?? 'nothing'}`,
        );
      }
    }
  }
  if (reader.peek() !== 'end of trees') {
    throw formatError(
      'end of trees',
      reader.lineNumber,
      `expected a tree or "end of trees", got ${clip(reader.peek() ?? '(end of text)')}`,
    );
  }
  reader.next();
  if (sizes !== undefined && sizes.length !== trees.length) {
    throw formatError(
      'tree_sizes',
      sizesEntry?.line ?? 1,
      `lists ${sizes.length} trees, the file has ${trees.length}`,
    );
  }

  const parameters: string[] = [];
  for (;;) {
    reader.skipBlank();
    if (reader.done) break;
    const lineNumber = reader.lineNumber;
    const line = reader.next();
    if (line === 'feature_importances:') {
      // Split counts: derived from the trees, so recomputed when writing.
      while (!reader.done && reader.peek() !== '' && reader.peek() !== 'parameters:') reader.next();
    } else if (line === 'parameters:') {
      for (;;) {
        if (reader.done) {
          throw formatError('parameters', lineNumber, 'no "end of parameters" line');
        }
        const parameter = reader.next();
        if (parameter === 'end of parameters') break;
        if (parameter !== '') parameters.push(parameter);
      }
    } else if (line.startsWith('pandas_categorical:')) {
      // The Python package's category lists: scoring works on the category codes regardless.
    } else {
      throw formatError('model', lineNumber, `unexpected line after the trees: ${clip(line)}`);
    }
  }

  return {
    objective,
    maxFeatureIdx,
    featureNames,
    featureInfos,
    trees,
    averageOutput,
    parameters,
  };
}

/**
 * Split counts per feature, as LightGBM's `FeatureImportance(importance_type=split)` counts them:
 * the splits with a positive gain.
 */
export function splitImportances(model: GbdtModel): Float64Array {
  const counts = new Float64Array(model.maxFeatureIdx + 1);
  for (const tree of model.trees) {
    for (let n = 0; n < tree.numLeaves - 1; n++) {
      if ((tree.splitGain[n] as number) > 0) {
        const f = tree.splitFeature[n] as number;
        counts[f] = (counts[f] as number) + 1;
      }
    }
  }
  return counts;
}

function join(values: ArrayLike<number>, format: (x: number) => string): string {
  let out = '';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ' ';
    out += format(values[i] as number);
  }
  return out;
}

function treeBlock(tree: GbdtTree, index: number): string {
  const num = (x: number): string => String(x);
  const lines = [
    `Tree=${index}`,
    `num_leaves=${tree.numLeaves}`,
    `num_cat=${numCategorical(tree)}`,
    `split_feature=${join(tree.splitFeature, num)}`,
    `split_gain=${join(tree.splitGain, formatDouble)}`,
    `threshold=${join(tree.threshold, formatDouble)}`,
    `decision_type=${join(tree.decisionType, num)}`,
    `left_child=${join(tree.leftChild, num)}`,
    `right_child=${join(tree.rightChild, num)}`,
    `leaf_value=${join(tree.leafValue, formatDouble)}`,
    `leaf_weight=${join(tree.leafWeight, formatDouble)}`,
    `leaf_count=${join(tree.leafCount, num)}`,
    `internal_value=${join(tree.internalValue, formatDouble)}`,
    `internal_weight=${join(tree.internalWeight, formatDouble)}`,
    `internal_count=${join(tree.internalCount, num)}`,
  ];
  if (numCategorical(tree) > 0) {
    lines.push(`cat_boundaries=${join(tree.catBoundaries, num)}`);
    lines.push(`cat_threshold=${join(tree.catThreshold, num)}`);
  }
  lines.push('is_linear=0', `shrinkage=${formatDouble(tree.shrinkage)}`);
  // LightGBM ends a tree with an empty line, and its block with one more.
  return lines.join('\n') + '\n\n\n';
}

function checkWords(key: string, values: readonly string[], count: number): void {
  if (values.length !== count) {
    throw new BadRequestError(key, `has ${values.length} entries, expected max_feature_idx + 1`);
  }
  values.forEach((v, i) => {
    if (v === '' || /\s/.test(v)) {
      throw new BadRequestError(key, `entry ${i} ${JSON.stringify(v)} is empty or has whitespace`);
    }
  });
}

/** Writes a model in LightGBM's text format (checked first: a bad model throws, naming a field). */
export function formatLightGbmModel(model: GbdtModel): string {
  checkGbdtModel(model);
  const count = model.maxFeatureIdx + 1;
  checkWords('feature_names', model.featureNames, count);
  checkWords('feature_infos', model.featureInfos, count);
  const objective = model.objective.trim();
  if (/[\r\n]/.test(objective)) throw new BadRequestError('objective', 'must be one line');
  model.parameters.forEach((p, i) => {
    if (p === '' || /[\r\n]/.test(p) || p === 'end of parameters') {
      throw new BadRequestError(`parameters[${i}]`, 'must be one non-empty line');
    }
  });
  const blocks = model.trees.map(treeBlock);
  const header = [
    'tree',
    `version=${LIGHTGBM_MODEL_VERSION}`,
    'num_class=1',
    'num_tree_per_iteration=1',
    'label_index=0',
    `max_feature_idx=${model.maxFeatureIdx}`,
  ];
  if (objective !== '') header.push(`objective=${objective}`);
  if (model.averageOutput) header.push('average_output');
  header.push(
    `feature_names=${model.featureNames.join(' ')}`,
    `feature_infos=${model.featureInfos.join(' ')}`,
    // Tree blocks are ASCII: characters are bytes.
    `tree_sizes=${blocks.map((b) => b.length).join(' ')}`,
  );
  const importances = splitImportances(model);
  const ranked = model.featureNames
    .map((name, f) => ({ name, count: importances[f] as number }))
    .filter((e) => e.count > 0);
  // Array.prototype.sort is stable: ties keep feature order, as LightGBM's stable_sort does.
  ranked.sort((a, b) => b.count - a.count);
  let text = header.join('\n') + '\n\n' + blocks.join('') + 'end of trees\n';
  text += '\nfeature_importances:\n' + ranked.map((e) => `${e.name}=${e.count}\n`).join('');
  if (model.parameters.length > 0) {
    text += '\nparameters:\n' + model.parameters.join('\n') + '\n\nend of parameters\n';
  }
  return text;
}
