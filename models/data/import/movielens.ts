/**
 * Importers of the three MovieLens layouts (https://grouplens.org/datasets/movielens/):
 *
 * | format           | events                      | items                          | users        | extra       |
 * | ---------------- | --------------------------- | ------------------------------ | ------------ | ----------- |
 * | `movielens-100k` | `u.data` (tab)              | `u.item` (`\|`, 19 genre flags) | `u.user`     | `u.genre`   |
 * | `movielens-1m`   | `ratings.dat` (`::`)        | `movies.dat`                   | `users.dat`  |             |
 * | `movielens-csv`  | `ratings.csv` (latest, 25M) | `movies.csv`                   | —            | `tags.csv`  |
 *
 * Ratings become `rating` events whose value is the rating. Genres become categories: the first
 * genre listed is the primary category, every genre (lower-cased) and the most used tags become
 * tags. The release year in a title, `(1995)`, gives the item's creation time (Jan 1, UTC) unless
 * the source has a release date. The ratings and movies files are required, the others optional.
 */
import { access } from 'node:fs/promises';
import { join } from 'node:path';

import { EventType } from '../types.js';
import { TagCounter, fileReport } from './context.js';
import type { ImportContext } from './context.js';
import { ImportError } from './errors.js';
import type { TextEncoding } from './records.js';
import { BadRowReason } from './report.js';
import { columnIndices, requireFile, scanFile } from './scan.js';
import type { RowHandler } from './scan.js';
import {
  ageBand,
  normalizeTag,
  parseDayMonthYear,
  parseNumber,
  regionFromPostalCode,
  titleYearTime,
} from './values.js';

export type MovieLensFormat = 'movielens-100k' | 'movielens-1m' | 'movielens-csv';

/** The file whose presence identifies each layout, in the order they are tried. */
const MARKER_FILES: ReadonlyArray<[MovieLensFormat, string]> = [
  ['movielens-100k', 'u.data'],
  ['movielens-1m', 'ratings.dat'],
  ['movielens-csv', 'ratings.csv'],
];

/** The 19 genres of MovieLens 100k, in the order of `u.item`'s flags (used without `u.genre`). */
export const ML100K_GENRES = [
  'unknown',
  'Action',
  'Adventure',
  'Animation',
  "Children's",
  'Comedy',
  'Crime',
  'Documentary',
  'Drama',
  'Fantasy',
  'Film-Noir',
  'Horror',
  'Musical',
  'Mystery',
  'Romance',
  'Sci-Fi',
  'Thriller',
  'War',
  'Western',
] as const;

/** What MovieLens latest writes when a movie has no genre. */
const NO_GENRES = '(no genres listed)';

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The MovieLens layout of a folder, from the files in it; undefined when none matches. */
export async function detectMovieLensFormat(dir: string): Promise<MovieLensFormat | undefined> {
  for (const [format, marker] of MARKER_FILES) {
    if (await exists(join(dir, marker))) return format;
  }
  return undefined;
}

export async function importMovieLens(
  ctx: ImportContext,
  dir: string,
  format: MovieLensFormat,
): Promise<void> {
  switch (format) {
    case 'movielens-100k':
      return import100k(ctx, dir);
    case 'movielens-1m':
      return import1m(ctx, dir);
    case 'movielens-csv':
      return importLatest(ctx, dir);
  }
}

/** A row handler for `user, item, rating, timestamp (epoch seconds)`, at the given columns. */
function ratingsHandler(
  ctx: ImportContext,
  cols: { user: number; item: number; rating: number; time: number },
): RowHandler {
  return (fields) => {
    const user = (fields[cols.user] ?? '').trim();
    const item = (fields[cols.item] ?? '').trim();
    if (user === '' || item === '') return BadRowReason.MissingId;
    const rating = parseNumber(fields[cols.rating] ?? '');
    if (!Number.isFinite(rating)) return BadRowReason.BadRating;
    const seconds = parseNumber(fields[cols.time] ?? '');
    if (!Number.isFinite(seconds) || seconds < 0) return BadRowReason.BadTime;
    ctx.builder.addEvent(user, item, seconds * 1000, EventType.Rating, rating);
    return undefined;
  };
}

/** Splits a `|`-separated genre list; MovieLens latest's "(no genres listed)" is no genre. */
function splitGenres(text: string): string[] {
  const genres = text
    .split('|')
    .map((g) => g.trim())
    .filter((g) => g !== '' && g !== NO_GENRES);
  return [...new Set(genres)];
}

/** A movie row handler for `id, title, genres` (the 1M and latest layouts). */
function moviesHandler(ctx: ImportContext, cols: { id: number; title: number; genres: number }) {
  return ((fields) => {
    const id = (fields[cols.id] ?? '').trim();
    if (id === '') return BadRowReason.MissingId;
    const title = (fields[cols.title] ?? '').trim();
    const added = ctx.builder.addItem(id, {
      categories: splitGenres(fields[cols.genres] ?? ''),
      createdAt: titleYearTime(title),
      title,
    });
    return added ? undefined : BadRowReason.DuplicateId;
  }) satisfies RowHandler;
}

/** A user row handler for MovieLens' `age` (years or 1M code) and postal code columns. */
function usersHandler(ctx: ImportContext, cols: { id: number; age: number; zip: number }) {
  return ((fields) => {
    const id = (fields[cols.id] ?? '').trim();
    if (id === '') return BadRowReason.MissingId;
    const band = ageBand(parseNumber(fields[cols.age] ?? ''));
    if (band === undefined) return BadRowReason.BadValue;
    const added = ctx.builder.addUser(id, {
      ageBand: band,
      country: regionFromPostalCode(fields[cols.zip] ?? ''),
    });
    return added ? undefined : BadRowReason.DuplicateId;
  }) satisfies RowHandler;
}

async function import100k(ctx: ImportContext, dir: string): Promise<void> {
  await requireFile(join(dir, 'u.data'), 'u.data');
  await requireFile(join(dir, 'u.item'), 'u.item');
  const latin1: TextEncoding = 'latin1';

  let genres: string[] = [...ML100K_GENRES];
  if (await exists(join(dir, 'u.genre'))) {
    const byIndex: string[] = [];
    const report = fileReport(ctx, 'u.genre', 'genres');
    await scanFile(ctx, {
      path: join(dir, 'u.genre'),
      delimiter: '|',
      encoding: latin1,
      report,
      fields: 2,
      row: (fields) => {
        const name = (fields[0] ?? '').trim();
        const index = parseNumber(fields[1] ?? '');
        if (name === '') return BadRowReason.MissingId;
        if (!Number.isInteger(index) || index < 0 || index > 1000) return BadRowReason.BadValue;
        byIndex[index] = name;
        return undefined;
      },
    });
    if (byIndex.length === 0 || byIndex.some((g) => g === undefined)) {
      throw new ImportError('u.genre: genre indices must run 0, 1, 2, ... without gaps', {
        file: 'u.genre',
      });
    }
    genres = byIndex;
  }

  // id | title | release date | video release date | IMDb URL | one 0/1 flag per genre
  await scanFile(ctx, {
    path: join(dir, 'u.item'),
    delimiter: '|',
    encoding: latin1,
    report: fileReport(ctx, 'u.item', 'items'),
    fields: 5 + genres.length,
    row: (fields) => {
      const id = (fields[0] ?? '').trim();
      if (id === '') return BadRowReason.MissingId;
      const title = (fields[1] ?? '').trim();
      const itemGenres = genres.filter((_, g) => (fields[5 + g] ?? '').trim() === '1');
      const released = parseDayMonthYear(fields[2] ?? '');
      const added = ctx.builder.addItem(id, {
        categories: itemGenres,
        createdAt: Number.isNaN(released) ? titleYearTime(title) : released,
        title,
      });
      return added ? undefined : BadRowReason.DuplicateId;
    },
  });

  // id | age | gender | occupation | zip code
  if (await exists(join(dir, 'u.user'))) {
    await scanFile(ctx, {
      path: join(dir, 'u.user'),
      delimiter: '|',
      encoding: latin1,
      report: fileReport(ctx, 'u.user', 'users'),
      fields: 5,
      row: usersHandler(ctx, { id: 0, age: 1, zip: 4 }),
    });
  }

  // user \t item \t rating \t timestamp
  await scanFile(ctx, {
    path: join(dir, 'u.data'),
    delimiter: '\t',
    encoding: latin1,
    report: fileReport(ctx, 'u.data', 'events'),
    fields: 4,
    row: ratingsHandler(ctx, { user: 0, item: 1, rating: 2, time: 3 }),
  });
}

async function import1m(ctx: ImportContext, dir: string): Promise<void> {
  await requireFile(join(dir, 'ratings.dat'), 'ratings.dat');
  await requireFile(join(dir, 'movies.dat'), 'movies.dat');
  const latin1: TextEncoding = 'latin1';

  // MovieID::Title::Genres
  await scanFile(ctx, {
    path: join(dir, 'movies.dat'),
    delimiter: '::',
    encoding: latin1,
    report: fileReport(ctx, 'movies.dat', 'items'),
    fields: 3,
    row: moviesHandler(ctx, { id: 0, title: 1, genres: 2 }),
  });

  // UserID::Gender::Age::Occupation::Zip-code
  if (await exists(join(dir, 'users.dat'))) {
    await scanFile(ctx, {
      path: join(dir, 'users.dat'),
      delimiter: '::',
      encoding: latin1,
      report: fileReport(ctx, 'users.dat', 'users'),
      fields: 5,
      row: usersHandler(ctx, { id: 0, age: 2, zip: 4 }),
    });
  }

  // UserID::MovieID::Rating::Timestamp
  await scanFile(ctx, {
    path: join(dir, 'ratings.dat'),
    delimiter: '::',
    encoding: latin1,
    report: fileReport(ctx, 'ratings.dat', 'events'),
    fields: 4,
    row: ratingsHandler(ctx, { user: 0, item: 1, rating: 2, time: 3 }),
  });
}

async function importLatest(ctx: ImportContext, dir: string): Promise<void> {
  await requireFile(join(dir, 'ratings.csv'), 'ratings.csv');
  await requireFile(join(dir, 'movies.csv'), 'movies.csv');

  await scanFile(ctx, {
    path: join(dir, 'movies.csv'),
    delimiter: ',',
    report: fileReport(ctx, 'movies.csv', 'items'),
    header: (columns) =>
      moviesHandler(
        ctx,
        columnIndices(columns, { id: 'movieId', title: 'title', genres: 'genres' }, 'movies.csv'),
      ),
  });

  if (await exists(join(dir, 'tags.csv'))) {
    const counter = new TagCounter();
    await scanFile(ctx, {
      path: join(dir, 'tags.csv'),
      delimiter: ',',
      report: fileReport(ctx, 'tags.csv', 'tags'),
      header: (columns) => {
        const cols = columnIndices(columns, { item: 'movieId', tag: 'tag' }, 'tags.csv');
        return (fields) => {
          const item = (fields[cols.item] ?? '').trim();
          if (item === '') return BadRowReason.MissingId;
          if (!ctx.builder.hasItem(item)) return BadRowReason.UnknownItem;
          const tag = normalizeTag(fields[cols.tag] ?? '');
          if (tag === '') return BadRowReason.EmptyTag;
          counter.add(item, tag);
          return undefined;
        };
      },
    });
    counter.applyTo(ctx);
  }

  await scanFile(ctx, {
    path: join(dir, 'ratings.csv'),
    delimiter: ',',
    report: fileReport(ctx, 'ratings.csv', 'events'),
    header: (columns) =>
      ratingsHandler(
        ctx,
        columnIndices(
          columns,
          { user: 'userId', item: 'movieId', rating: 'rating', time: 'timestamp' },
          'ratings.csv',
        ),
      ),
  });
}
