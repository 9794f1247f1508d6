/**
 * Import of any interaction log in delimited text with a header row, given a column mapping:
 *
 *   events  user=<col>,item=<col>,time=<col>[,type=<col>][,value=<col>]     (required)
 *   items   id=<col>[,category=<col>][,tags=<col>][,title=<col>][,created=<col>]
 *   users   id=<col>[,age=<col>|,age_band=<col>][,country=<col>][,device=<col>][,signup=<col>]
 *
 * Times are read value by value (see {@link parseTime}): epoch seconds, epoch milliseconds or
 * ISO 8601. A category cell may list several categories separated by `|` (the first is the
 * primary); a tags cell separates tags by `|`, `;` or `,`. Event type values are matched without
 * case against {@link EVENT_TYPE_ALIASES} and the caller's own mapping; a value neither knows
 * becomes a `click` and is counted in the report.
 */
import { open } from 'node:fs/promises';
import { extname } from 'node:path';

import { EventType } from '../types.js';
import { fileReport } from './context.js';
import type { ImportContext } from './context.js';
import { ImportError } from './errors.js';
import type { Delimiter, TextEncoding } from './records.js';
import { BadRowReason } from './report.js';
import { columnIndices, requireFile, scanFile } from './scan.js';
import { ageBand, normalizeTag, parseNumber, parseTime } from './values.js';

export const EVENT_COLUMNS = ['user', 'item', 'time', 'type', 'value'] as const;
export const ITEM_COLUMNS = ['id', 'category', 'tags', 'title', 'created'] as const;
export const USER_COLUMNS = ['id', 'age', 'age_band', 'country', 'device', 'signup'] as const;

export type EventColumnMap = { user: string; item: string; time: string } & Partial<
  Record<'type' | 'value', string>
>;
export type ItemColumnMap = { id: string } & Partial<
  Record<'category' | 'tags' | 'title' | 'created', string>
>;
export type UserColumnMap = { id: string } & Partial<
  Record<'age' | 'age_band' | 'country' | 'device' | 'signup', string>
>;

/** Event type values understood without a `--type-map`, lower-case. */
export const EVENT_TYPE_ALIASES: Readonly<Record<string, EventType>> = {
  view: EventType.View,
  views: EventType.View,
  pageview: EventType.View,
  page_view: EventType.View,
  detail_view: EventType.View,
  watch: EventType.View,
  play: EventType.View,
  click: EventType.Click,
  clicks: EventType.Click,
  tap: EventType.Click,
  like: EventType.Like,
  likes: EventType.Like,
  favorite: EventType.Like,
  favourite: EventType.Like,
  // Putting an item in the cart is a stronger signal than a click, weaker than buying it.
  addtocart: EventType.Like,
  add_to_cart: EventType.Like,
  cart: EventType.Like,
  purchase: EventType.Purchase,
  buy: EventType.Purchase,
  order: EventType.Purchase,
  transaction: EventType.Purchase,
  checkout: EventType.Purchase,
  rating: EventType.Rating,
  rate: EventType.Rating,
  rated: EventType.Rating,
};

/** The internal event type names (`view`, `click`, ...), for `--type-map` and `--event-type`. */
export const EVENT_TYPE_BY_NAME: Readonly<Record<string, EventType>> = {
  view: EventType.View,
  click: EventType.Click,
  like: EventType.Like,
  purchase: EventType.Purchase,
  rating: EventType.Rating,
};

/** How many distinct unknown event type values the report lists by name. */
const MAX_UNKNOWN_TYPES_LISTED = 20;

export interface CsvFileSpec<M> {
  /** Where to read it. */
  path: string;
  /** Its name in reports and messages. */
  file: string;
  map: M;
}

export interface CsvImportSpec {
  events: CsvFileSpec<EventColumnMap>;
  items?: CsvFileSpec<ItemColumnMap>;
  users?: CsvFileSpec<UserColumnMap>;
  /** Extra type values (lower-case) to internal types, checked before the built-in aliases. */
  typeMap: Readonly<Record<string, EventType>>;
  /** The type of every event when the mapping has no `type` column. */
  defaultType: EventType;
  /** Undefined: from the extension (`.tsv`, `.tab`) or the header row. */
  delimiter?: Delimiter;
  encoding: TextEncoding;
  /** Filled with the unknown type values met and their counts. */
  unknownTypes: Record<string, number>;
}

/**
 * Parses `key=column,key=column`. Throws naming `flag` when a key is not in `allowed`, given twice,
 * or a required key is missing.
 */
export function parseColumnMap<K extends string>(
  text: string,
  allowed: readonly K[],
  required: readonly K[],
  flag: string,
): Partial<Record<K, string>> {
  const map: Partial<Record<K, string>> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim() as K;
    const column = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (!allowed.includes(key)) {
      throw new ImportError(`${flag}: unknown key "${key}" (expected ${allowed.join(', ')})`, {
        field: flag,
      });
    }
    if (column === '') {
      throw new ImportError(`${flag}: "${key}" needs a column name (${key}=<column>)`, {
        field: flag,
      });
    }
    if (map[key] !== undefined) {
      throw new ImportError(`${flag}: "${key}" is given twice`, { field: flag });
    }
    map[key] = column;
  }
  for (const key of required) {
    if (map[key] === undefined) {
      throw new ImportError(`${flag}: "${key}" is required (${key}=<column>)`, { field: flag });
    }
  }
  return map;
}

/** Parses `--type-map value=type,...` (e.g. `transaction=purchase,addtocart=like`). */
export function parseTypeMap(text: string, flag = '--type-map'): Record<string, EventType> {
  const map: Record<string, EventType> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.lastIndexOf('=');
    const value = part.slice(0, Math.max(eq, 0)).trim().toLowerCase();
    const type =
      EVENT_TYPE_BY_NAME[
        part
          .slice(eq + 1)
          .trim()
          .toLowerCase()
      ];
    if (eq < 0 || value === '' || type === undefined) {
      throw new ImportError(
        `${flag}: expected value=type with type one of ${Object.keys(EVENT_TYPE_BY_NAME).join(', ')}, got "${part.trim()}"`,
        { field: flag },
      );
    }
    map[value] = type;
  }
  return map;
}

/** The delimiter of a file: from its extension, else the most frequent candidate in line 1. */
export async function sniffDelimiter(path: string): Promise<Delimiter> {
  const ext = extname(path).toLowerCase();
  if (ext === '.tsv' || ext === '.tab') return '\t';
  const handle = await open(path, 'r');
  let head: string;
  try {
    const buffer = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    head = buffer.subarray(0, bytesRead).toString('latin1');
  } finally {
    await handle.close();
  }
  const first = head.split(/\r?\n/, 1)[0] ?? '';
  if (first.includes('::')) return '::';
  let best: Delimiter = ',';
  let bestCount = 0;
  for (const candidate of [',', '\t', ';', '|'] as const) {
    const count = first.split(candidate).length - 1;
    if (count > bestCount) {
      best = candidate;
      bestCount = count;
    }
  }
  return best;
}

function countUnknownType(spec: CsvImportSpec, value: string): void {
  const key = value === '' ? '(empty)' : value;
  const known = spec.unknownTypes[key] !== undefined;
  const listed = Object.keys(spec.unknownTypes).length;
  const slot = known || listed < MAX_UNKNOWN_TYPES_LISTED ? key : '(other)';
  spec.unknownTypes[slot] = (spec.unknownTypes[slot] ?? 0) + 1;
}

export async function importCsv(ctx: ImportContext, spec: CsvImportSpec): Promise<void> {
  const { builder } = ctx;
  for (const file of [spec.events, spec.items, spec.users]) {
    if (file !== undefined) await requireFile(file.path, file.file);
  }
  if (spec.defaultType === EventType.Rating && spec.events.map.value === undefined) {
    throw new ImportError('--map: events are ratings, so a value=<column> is required', {
      field: '--map',
    });
  }
  const reader = async (path: string) => ({
    delimiter: spec.delimiter ?? (await sniffDelimiter(path)),
    encoding: spec.encoding,
  });

  if (spec.items !== undefined) {
    const { file, map } = spec.items;
    await scanFile(ctx, {
      path: spec.items.path,
      ...(await reader(spec.items.path)),
      report: fileReport(ctx, file, 'items'),
      header: (columns) => {
        const cols = columnIndices(columns, map, file);
        return (fields) => {
          const id = (fields[cols.id] ?? '').trim();
          if (id === '') return BadRowReason.MissingId;
          let createdAt = NaN;
          if (cols.created !== undefined) {
            const text = fields[cols.created] ?? '';
            createdAt = parseTime(text);
            if (Number.isNaN(createdAt) && text.trim() !== '') return BadRowReason.BadTime;
          }
          const categories =
            cols.category === undefined
              ? []
              : (fields[cols.category] ?? '')
                  .split('|')
                  .map((c) => c.trim())
                  .filter((c) => c !== '');
          const tags =
            cols.tags === undefined
              ? []
              : (fields[cols.tags] ?? '').split(/[|;,]/).map(normalizeTag);
          const added = builder.addItem(id, {
            categories,
            tags,
            createdAt,
            ...(cols.title === undefined ? {} : { title: (fields[cols.title] ?? '').trim() }),
          });
          return added ? undefined : BadRowReason.DuplicateId;
        };
      },
    });
  }

  if (spec.users !== undefined) {
    const { file, map } = spec.users;
    await scanFile(ctx, {
      path: spec.users.path,
      ...(await reader(spec.users.path)),
      report: fileReport(ctx, file, 'users'),
      header: (columns) => {
        const cols = columnIndices(columns, map, file);
        const text = (col: number | undefined, fields: readonly string[]) =>
          col === undefined ? undefined : (fields[col] ?? '').trim() || undefined;
        return (fields) => {
          const id = (fields[cols.id] ?? '').trim();
          if (id === '') return BadRowReason.MissingId;
          let band = text(cols.age_band, fields);
          const age = text(cols.age, fields);
          if (age !== undefined) {
            band = ageBand(parseNumber(age));
            if (band === undefined) return BadRowReason.BadValue;
          }
          const signup = text(cols.signup, fields);
          const signupAt = signup === undefined ? NaN : parseTime(signup);
          if (signup !== undefined && Number.isNaN(signupAt)) return BadRowReason.BadTime;
          const added = builder.addUser(id, {
            ageBand: band,
            country: text(cols.country, fields),
            device: text(cols.device, fields),
            signupAt,
          });
          return added ? undefined : BadRowReason.DuplicateId;
        };
      },
    });
  }

  const { file, map } = spec.events;
  await scanFile(ctx, {
    path: spec.events.path,
    ...(await reader(spec.events.path)),
    report: fileReport(ctx, file, 'events'),
    header: (columns) => {
      const cols = columnIndices(columns, map, file);
      return (fields) => {
        const user = (fields[cols.user] ?? '').trim();
        const item = (fields[cols.item] ?? '').trim();
        if (user === '' || item === '') return BadRowReason.MissingId;
        const ts = parseTime(fields[cols.time] ?? '');
        if (Number.isNaN(ts)) return BadRowReason.BadTime;
        let type = spec.defaultType;
        if (cols.type !== undefined) {
          const raw = (fields[cols.type] ?? '').trim().toLowerCase();
          const known = spec.typeMap[raw] ?? EVENT_TYPE_ALIASES[raw];
          if (known === undefined) countUnknownType(spec, raw);
          type = known ?? EventType.Click;
        }
        let value = 0;
        const valueText = cols.value === undefined ? '' : (fields[cols.value] ?? '').trim();
        if (valueText !== '') value = Number(valueText);
        if (type === EventType.Rating && (valueText === '' || !Number.isFinite(value))) {
          return BadRowReason.BadRating;
        }
        if (!Number.isFinite(value)) return BadRowReason.BadValue;
        builder.addEvent(user, item, ts, type, value);
        return undefined;
      };
    },
  });
}
