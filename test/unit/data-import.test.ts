import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  formatImportReport,
  registerDataImportCommand,
  runDataImport,
} from '../../models/cli/data-import.js';
import { dataCommand } from '../../models/cli/data.js';
import { EventType, readDataset, writeDataset } from '../../models/data/index.js';
import type { ItemTable } from '../../models/data/index.js';
import {
  BadRowReason,
  IMPORT_FAILED,
  ImportError,
  UNKNOWN_CATEGORY,
  ageBand,
  importDataset,
  parseColumnMap,
  parseQuoted,
  parseTime,
  parseTypeMap,
  readRecords,
  regionFromPostalCode,
  stableArgsort,
  titleYearTime,
} from '../../models/data/import/index.js';
import type { FileReport, ImportResult, TextRecord } from '../../models/data/import/index.js';

// Every fixture below is invented: a few made-up rows in each layout (no row of a real MovieLens
// release, whose licence forbids redistribution), written to a temporary folder per test.

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'recsys-import-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string, encoding: 'utf8' | 'latin1' = 'utf8') {
  await writeFile(join(dir, name), Buffer.from(text, encoding));
}

async function records(
  text: string,
  delimiter: ',' | '|' | '::' | '\t' = ',',
): Promise<TextRecord[]> {
  await write('in.txt', text);
  const out: TextRecord[] = [];
  for await (const record of readRecords(join(dir, 'in.txt'), { delimiter })) out.push(record);
  return out;
}

function fileReport(result: ImportResult, file: string): FileReport {
  const report = result.report.files.find((f) => f.file === file);
  if (report === undefined) throw new Error(`no report for ${file}`);
  return report;
}

function itemOf(result: ImportResult, id: string) {
  const { items } = result.tables;
  const i = items.ids.indexOf(id);
  expect(i).toBeGreaterThanOrEqual(0);
  return describeItem(items, i);
}

function describeItem(items: ItemTable, i: number) {
  const from = items.tagOffsets[i] ?? 0;
  const to = items.tagOffsets[i + 1] ?? 0;
  return {
    category: items.categories[items.category[i] ?? -1],
    tags: Array.from(items.tagIds.subarray(from, to), (t) => items.tags[t]),
    createdAt: items.createdAt[i],
    title: items.titles?.[i],
  };
}

function eventRows(result: ImportResult) {
  const { events, users, items } = result.tables;
  return Array.from({ length: events.length }, (_, i) => ({
    user: users.ids[events.user[i] ?? -1],
    item: items.ids[events.item[i] ?? -1],
    ts: events.ts[i],
    type: events.type[i],
    value: events.value[i],
  }));
}

async function rejection(promise: Promise<unknown>): Promise<ImportError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ImportError);
    return err as ImportError;
  }
  throw new Error('expected the import to fail');
}

describe('record reader', () => {
  it('splits quoted CSV fields holding commas, escaped quotes and empty fields', () => {
    expect(parseQuoted('1,"Heat, The (1995)",Action|Crime', ',')).toEqual([
      '1',
      'Heat, The (1995)',
      'Action|Crime',
    ]);
    expect(parseQuoted('2,"Say ""Hi"" (2001)",', ',')).toEqual(['2', 'Say "Hi" (2001)', '']);
    expect(parseQuoted(',,', ',')).toEqual(['', '', '']);
    expect(parseQuoted('3,5" Screen,x', ',')).toEqual(['3', '5" Screen', 'x']);
    expect(parseQuoted('4,"open', ',')).toBeUndefined();
  });

  it('drops a BOM, accepts CRLF, keeps line numbers and reports blank lines', async () => {
    const out = await records('\uFEFFa,b\r\n1,2\r\n\r\n3,"x\r\ny"\r\n4,5\r\n');
    expect(out).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1', '2'] },
      { line: 3, fields: [] },
      { line: 4, fields: ['3', 'x\ny'] },
      { line: 6, fields: ['4', '5'] },
    ]);
  });

  it('reports a quote left open at the end of the file', async () => {
    const out = await records('a,b\n1,"never closed\n2,3\n');
    expect(out).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: [], error: 'unterminated_quote' },
    ]);
  });

  it('splits tab, pipe and double-colon files without quoting', async () => {
    expect(await records('1::Say "Hi" (2001)::Comedy\n', '::')).toEqual([
      { line: 1, fields: ['1', 'Say "Hi" (2001)', 'Comedy'] },
    ]);
    expect(await records('1\t2\t3\n', '\t')).toEqual([{ line: 1, fields: ['1', '2', '3'] }]);
  });

  it('decodes ISO-8859-1 files', async () => {
    await write('latin1.txt', '1|Misérables, Les (1995)|Drama\n', 'latin1');
    const out: TextRecord[] = [];
    for await (const r of readRecords(join(dir, 'latin1.txt'), {
      delimiter: '|',
      encoding: 'latin1',
    })) {
      out.push(r);
    }
    expect(out[0]?.fields[1]).toBe('Misérables, Les (1995)');
  });
});

describe('stableArgsort', () => {
  it('sorts like a stable comparison sort, negatives, fractions and ties included', () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const values = Float64Array.from({ length: 5000 }, (_, i) =>
      i % 5 === 0 ? 1_700_000_000_000 : Math.round((random() - 0.3) * 1e13) / (i % 3 === 0 ? 7 : 1),
    );
    values[1] = -0;
    values[2] = 0;
    const expected = Array.from(values.keys()).sort((a, b) => values[a]! - values[b]! || a - b);
    expect(Array.from(stableArgsort(values))).toEqual(expected);
    expect(Array.from(stableArgsort(new Float64Array([3, 3, 3])))).toEqual([0, 1, 2]);
    expect(Array.from(stableArgsort(new Float64Array(0)))).toEqual([]);
  });
});

describe('value parsing', () => {
  it('reads epoch seconds, epoch milliseconds and ISO 8601 per value', () => {
    const t = Date.UTC(2024, 2, 1, 12, 0, 0);
    expect(parseTime('1709294400')).toBe(t);
    expect(parseTime('1709294400000')).toBe(t);
    expect(parseTime('1709294400.5')).toBe(t + 500);
    expect(parseTime('2024-03-01T12:00:00Z')).toBe(t);
    // No zone: UTC, whatever the machine's time zone.
    expect(parseTime('2024-03-01 12:00:00')).toBe(t);
    expect(parseTime('2024-03-01T14:00:00+02:00')).toBe(t);
    expect(parseTime('2024-03-01')).toBe(Date.UTC(2024, 2, 1));
    for (const bad of ['', 'yesterday', '03/01/2024', 'NaN']) expect(parseTime(bad)).toBeNaN();
  });

  it('finds the release year at the end of a title', () => {
    expect(titleYearTime('Heat (1995)')).toBe(Date.UTC(1995, 0, 1));
    expect(titleYearTime('Show (1975-1979) ')).toBe(Date.UTC(1975, 0, 1));
    expect(titleYearTime('No Year')).toBeNaN();
    expect(titleYearTime('1984 (Nineteen Eighty-Four)')).toBeNaN();
  });

  it('bands ages and turns postal codes into regions', () => {
    expect([5, 18, 24, 25, 44, 45, 50, 56, 80].map(ageBand)).toEqual([
      'under-18',
      '18-24',
      '18-24',
      '25-34',
      '35-44',
      '45-49',
      '50-55',
      '56+',
      '56+',
    ]);
    expect(ageBand(NaN)).toBeUndefined();
    expect(regionFromPostalCode('94110')).toBe('US-9');
    expect(regionFromPostalCode('02139-4307')).toBe('US-0');
    expect(regionFromPostalCode('T8H1N')).toBe('CA');
    expect(regionFromPostalCode('x')).toBeUndefined();
  });

  it('parses column and type mappings, naming the flag on error', () => {
    expect(
      parseColumnMap('user=uid, item=sku,time=at', ['user', 'item', 'time'], ['user'], '--map'),
    ).toEqual({ user: 'uid', item: 'sku', time: 'at' });
    expect(() => parseColumnMap('usr=uid', ['user'], ['user'], '--map')).toThrow(/--map: unknown/);
    expect(() => parseColumnMap('item=x', ['user', 'item'], ['user'], '--map')).toThrow(
      /--map: "user" is required/,
    );
    expect(parseTypeMap('Transaction=purchase,addtocart=like')).toEqual({
      transaction: EventType.Purchase,
      addtocart: EventType.Like,
    });
    expect(() => parseTypeMap('x=buy')).toThrow(/--type-map/);
  });
});

/** u.item rows: id|title|release|video|url|19 flags. */
function uItem(id: number, title: string, release: string, genres: number[]): string {
  const flags = Array.from({ length: 19 }, (_, g) => (genres.includes(g) ? '1' : '0'));
  return [id, title, release, '', 'http://example.invalid/', ...flags].join('|');
}

describe('MovieLens 100k', () => {
  async function writeFixture() {
    await write(
      'u.item',
      [
        uItem(1, 'Fictional Film (1995)', '01-Jan-1995', [3, 5]),
        uItem(2, 'Misérables, Les (1996)', '', [8]),
        uItem(3, 'Nothing Known', '', []),
        '4|too few fields',
      ].join('\n') + '\n',
      'latin1',
    );
    await write('u.user', '10|24|M|writer|94110\n11|61|F|other|T8H1N\n12|old|F|none|00000\n');
    await write(
      'u.data',
      [
        '10\t1\t4\t874965758',
        '11\t2\t5\t874965000',
        '',
        '10\t2\tfive\t874965800',
        '10\t99\t3\t874965900',
        '11\t1\t2',
        '13\t3\t1\t874965000',
      ].join('\n') + '\n',
    );
  }

  it('imports ratings, genres, release dates, latin1 titles and profiles; counts bad rows', async () => {
    await writeFixture();
    const result = await importDataset({ path: dir });
    expect(result.format).toBe('movielens-100k');
    expect(result.source).toBe('movielens');

    expect(itemOf(result, '1')).toEqual({
      category: 'Animation',
      tags: ['animation', 'comedy'],
      createdAt: Date.UTC(1995, 0, 1),
      title: 'Fictional Film (1995)',
    });
    // No release date: the year in the title.
    expect(itemOf(result, '2')).toMatchObject({
      category: 'Drama',
      createdAt: Date.UTC(1996, 0, 1),
      title: 'Misérables, Les (1996)',
    });
    expect(itemOf(result, '3')).toMatchObject({ category: UNKNOWN_CATEGORY, tags: [] });
    expect(itemOf(result, '3').createdAt).toBeNaN();
    // An item only the ratings name is kept, with the unknown category.
    expect(itemOf(result, '99')).toMatchObject({ category: UNKNOWN_CATEGORY, title: '' });
    expect(result.report.itemsOnlyInEvents).toBe(1);

    const { users } = result.tables;
    expect(users.ids).toEqual(['10', '11', '13']);
    expect(Array.from(users.ageBand, (b) => users.ageBands[b])).toEqual([
      '18-24',
      '56+',
      undefined,
    ]);
    expect(Array.from(users.country, (c) => users.countries[c])).toEqual(['US-9', 'CA', undefined]);
    expect(Array.from(users.device)).toEqual([-1, -1, -1]);
    expect(result.report.usersOnlyInEvents).toBe(1);

    expect(fileReport(result, 'u.item')).toMatchObject({
      read: 4,
      imported: 3,
      bad: { field_count: 1 },
      firstBad: [{ line: 4, reason: 'field_count' }],
    });
    expect(fileReport(result, 'u.user')).toMatchObject({
      read: 3,
      imported: 2,
      bad: { bad_value: 1 },
    });
    expect(fileReport(result, 'u.data')).toMatchObject({
      read: 6,
      imported: 4,
      blank: 1,
      bad: { bad_rating: 1, field_count: 1 },
      firstBad: [
        { line: 4, reason: BadRowReason.BadRating },
        { line: 6, reason: BadRowReason.FieldCount },
      ],
    });

    // Sorted by time; equal times keep file order.
    expect(eventRows(result)).toEqual([
      { user: '11', item: '2', ts: 874965000_000, type: EventType.Rating, value: 5 },
      { user: '13', item: '3', ts: 874965000_000, type: EventType.Rating, value: 1 },
      { user: '10', item: '1', ts: 874965758_000, type: EventType.Rating, value: 4 },
      { user: '10', item: '99', ts: 874965900_000, type: EventType.Rating, value: 3 },
    ]);
    expect(result.report.timeRange).toEqual({
      from: new Date(874965000_000).toISOString(),
      to: new Date(874965900_000).toISOString(),
    });
  });

  it('takes genre names from u.genre when present', async () => {
    await writeFixture();
    const names = Array.from({ length: 19 }, (_, g) => `g${g}`);
    await write('u.genre', names.map((n, g) => `${n}|${g}`).join('\n') + '\n\n');
    const result = await importDataset({ path: dir, format: 'movielens-100k' });
    expect(itemOf(result, '1')).toMatchObject({ category: 'g3', tags: ['g3', 'g5'] });
    expect(fileReport(result, 'u.genre')).toMatchObject({ read: 19, imported: 19, blank: 1 });
  });

  it('fails naming u.item when it is missing', async () => {
    await write('u.data', '1\t1\t1\t1\n');
    const err = await rejection(importDataset({ path: dir }));
    expect(err.code).toBe(IMPORT_FAILED);
    expect(err.file).toBe('u.item');
    expect(err.message).toMatch(/u\.item not found/);
  });
});

describe('MovieLens latest (CSV)', () => {
  async function writeFixture() {
    // A BOM and CRLF line ends on the movies file, as a spreadsheet would save it.
    await write(
      'movies.csv',
      '\uFEFFmovieId,title,genres\r\n' +
        '1,"Made-Up Story, A (2001)",Comedy|Adventure\r\n' +
        '2,"The ""Quoted"" One (1999)",(no genres listed)\r\n' +
        '3,Series Title (2006-2008),Drama\r\n' +
        '3,Duplicate (2000),Drama\r\n',
    );
    await write(
      'tags.csv',
      'userId,movieId,tag,timestamp\n' +
        '7,1,Funny,1500000000\n' +
        '8,1,funny ,1500000001\n' +
        '8,1,Witty,1500000002\n' +
        '8,1,A|B,1500000003\n' +
        '8,404,orphan,1500000004\n' +
        '8,2,  ,1500000005\n',
    );
    await write(
      'ratings.csv',
      'userId,movieId,rating,timestamp\n' +
        '7,1,4.5,1500000100\n' +
        '7,2,3.0,1500000050\n' +
        '8,3,,1500000060\n' +
        '8,3,2.0,not-a-time\n' +
        '8,1,5.0,1500000070,extra\n' +
        '8,3,0.5,1500000080\n',
    );
  }

  it('imports quoted titles, genres, top tags and ratings; counts bad rows', async () => {
    await writeFixture();
    const result = await importDataset({ path: dir, maxTagsPerItem: 2 });
    expect(result.format).toBe('movielens-csv');

    expect(itemOf(result, '1')).toEqual({
      category: 'Comedy',
      // Genres first, then the most used tags (ties by name), at most 2.
      tags: ['comedy', 'adventure', 'funny', 'a b'],
      createdAt: Date.UTC(2001, 0, 1),
      title: 'Made-Up Story, A (2001)',
    });
    expect(itemOf(result, '2')).toMatchObject({
      category: UNKNOWN_CATEGORY,
      tags: [],
      title: 'The "Quoted" One (1999)',
    });
    expect(itemOf(result, '3')).toMatchObject({
      title: 'Series Title (2006-2008)',
      createdAt: Date.UTC(2006, 0, 1),
    });
    expect(result.tables.items.ids).toEqual(['1', '2', '3']);

    expect(fileReport(result, 'movies.csv')).toMatchObject({
      read: 4,
      imported: 3,
      bad: { duplicate_id: 1 },
      firstBad: [{ line: 5, reason: 'duplicate_id' }],
    });
    expect(fileReport(result, 'tags.csv')).toMatchObject({
      read: 6,
      imported: 4,
      bad: { unknown_item: 1, empty_tag: 1 },
    });
    expect(fileReport(result, 'ratings.csv')).toMatchObject({
      read: 6,
      imported: 3,
      bad: { bad_rating: 1, bad_time: 1, field_count: 1 },
      firstBad: [
        { line: 4, reason: 'bad_rating' },
        { line: 5, reason: 'bad_time' },
        { line: 6, reason: 'field_count' },
      ],
    });
    expect(eventRows(result).map((e) => [e.user, e.item, e.value])).toEqual([
      ['7', '2', 3],
      ['8', '3', 0.5],
      ['7', '1', 4.5],
    ]);
    expect(result.report.categories).toEqual({ Comedy: 1, Drama: 1, unknown: 1 });
  });

  it('fails naming a missing required column', async () => {
    await writeFixture();
    await write('ratings.csv', 'userId,itemId,rating,timestamp\n1,1,4,1\n');
    const err = await rejection(importDataset({ path: dir }));
    expect(err.file).toBe('ratings.csv');
    expect(err.field).toBe('movieId');
    expect(err.message).toMatch(/ratings\.csv: required column "movieId" is missing/);
  });

  it('fails clearly on a folder with no known files', async () => {
    await mkdir(join(dir, 'empty'));
    const err = await rejection(importDataset({ path: join(dir, 'empty') }));
    expect(err.message).toMatch(/no MovieLens files found/);
  });
});

describe('MovieLens 1M', () => {
  it('imports the :: files, latin1 titles and age codes', async () => {
    await write(
      'movies.dat',
      '1::Café Story (1997)::Drama|Romance\n2::Bad::Row::Here\n3::Quiet Film (1980)::Comedy\n',
      'latin1',
    );
    await write('users.dat', '1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::abc\n');
    await write(
      'ratings.dat',
      '1::1::5::978300760\n2::3::3::978300000\n1::3::x::978300000\n\n3::1::4::978299000\n',
    );
    const result = await importDataset({ path: dir });
    expect(result.format).toBe('movielens-1m');
    expect(itemOf(result, '1')).toEqual({
      category: 'Drama',
      tags: ['drama', 'romance'],
      createdAt: Date.UTC(1997, 0, 1),
      title: 'Café Story (1997)',
    });
    expect(fileReport(result, 'movies.dat')).toMatchObject({ read: 3, imported: 2 });
    const { users } = result.tables;
    expect(Array.from(users.ageBand, (b) => users.ageBands[b])).toEqual([
      'under-18',
      '56+',
      '25-34',
    ]);
    expect(Array.from(users.country, (c) => users.countries[c] ?? null)).toEqual([
      'US-4',
      'US-7',
      null,
    ]);
    expect(fileReport(result, 'ratings.dat')).toMatchObject({
      read: 4,
      imported: 3,
      blank: 1,
      bad: { bad_rating: 1 },
    });
    expect(eventRows(result).map((e) => e.ts)).toEqual([
      978299000_000, 978300000_000, 978300760_000,
    ]);
  });
});

describe('generic CSV', () => {
  async function writeFixture() {
    await write(
      'events.csv',
      'who,what,when,kind,dwell\n' +
        'u1,i1,2024-03-01T10:00:00Z,view,12.5\n' +
        'u1,i2,1709290800,CLICK,\n' +
        'u2,i1,1709290800000,transaction,\n' +
        'u2,i3,2024-03-01T09:00:00,addtocart,\n' +
        'u2,i1,2024-03-01,teleport,\n' +
        'u3,i2,sometime,view,\n' +
        ',i2,1709290800,view,\n' +
        'u3,i2,1709290801,rate,4\n' +
        'u3,i1,1709290802,rate,\n' +
        'u3,i1,1709290803,view,long\n',
    );
    await write(
      'items.tsv',
      'sku\tcat\tlabels\tname\tadded\n' +
        'i1\tShoes|Sport\tRunning; Red\tRunner\t2023-01-02\n' +
        'i2\tBooks\t\tA Book\t\n' +
        'i3\tBooks\tx\tOther\tlast week\n',
    );
    await write('users.csv', 'id,age,plan\nu1,33,ios\nu2,,android\n');
  }

  it('imports events with mixed time formats, mapped types, items and users', async () => {
    await writeFixture();
    const result = await importDataset({
      path: dir,
      events: 'events.csv',
      map: 'user=who,item=what,time=when,type=kind,value=dwell',
      items: 'items.tsv',
      itemMap: 'id=sku,category=cat,tags=labels,title=name,created=added',
      users: 'users.csv',
      userMap: 'id=id,age=age,device=plan',
      typeMap: 'transaction=purchase',
    });
    expect(result.format).toBe('csv');
    expect(result.source).toBe('csv');

    expect(itemOf(result, 'i1')).toEqual({
      category: 'Shoes',
      tags: ['shoes', 'sport', 'running', 'red'],
      createdAt: Date.UTC(2023, 0, 2),
      title: 'Runner',
    });
    expect(fileReport(result, 'items.tsv')).toMatchObject({
      read: 3,
      imported: 2,
      bad: { bad_time: 1 },
    });
    // i3 had a bad row, so only the events define it.
    expect(itemOf(result, 'i3').category).toBe(UNKNOWN_CATEGORY);

    const { users } = result.tables;
    expect(users.ids.slice(0, 2)).toEqual(['u1', 'u2']);
    expect(users.ageBands[users.ageBand[0] ?? -1]).toBe('25-34');
    expect(users.ageBand[1]).toBe(-1);
    expect(Array.from(users.device.subarray(0, 2), (d) => users.devices[d])).toEqual([
      'ios',
      'android',
    ]);

    expect(fileReport(result, 'events.csv')).toMatchObject({
      read: 10,
      imported: 6,
      bad: { bad_time: 1, missing_id: 1, bad_rating: 1, bad_value: 1 },
    });
    expect(result.report.unknownEventTypes).toEqual({ teleport: 1 });
    const t = Date.UTC(2024, 2, 1, 11, 0, 0);
    expect(eventRows(result)).toEqual([
      { user: 'u2', item: 'i1', ts: Date.UTC(2024, 2, 1), type: EventType.Click, value: 0 },
      { user: 'u2', item: 'i3', ts: t - 2 * 3_600_000, type: EventType.Like, value: 0 },
      { user: 'u1', item: 'i1', ts: t - 3_600_000, type: EventType.View, value: 12.5 },
      { user: 'u1', item: 'i2', ts: t, type: EventType.Click, value: 0 },
      { user: 'u2', item: 'i1', ts: t, type: EventType.Purchase, value: 0 },
      { user: 'u3', item: 'i2', ts: t + 1000, type: EventType.Rating, value: 4 },
    ]);
  });

  it('takes the events file as the path, with one type for every event', async () => {
    await write('log.csv', 'u;i;t\na;x;1700000000\nb;y;1700000001\n');
    const result = await importDataset({
      path: join(dir, 'log.csv'),
      map: 'user=u,item=i,time=t',
      eventType: 'purchase',
    });
    expect(eventRows(result).map((e) => [e.user, e.type])).toEqual([
      ['a', EventType.Purchase],
      ['b', EventType.Purchase],
    ]);
    expect(result.tables.items.titles).toBeUndefined();
  });

  it('fails naming a mapped column the file does not have', async () => {
    await writeFixture();
    const err = await rejection(
      importDataset({ path: dir, events: 'events.csv', map: 'user=who,item=what,time=ts' }),
    );
    expect(err.field).toBe('ts');
    expect(err.file).toBe('events.csv');
    expect(err.message).toMatch(/events\.csv: required column "ts" is missing/);
  });

  it('fails naming the flag when the mapping or a file is missing', async () => {
    await writeFixture();
    expect((await rejection(importDataset({ path: dir, events: 'events.csv' }))).field).toBe(
      '--map',
    );
    const missing = await rejection(
      importDataset({ path: dir, events: 'nope.csv', map: 'user=a,item=b,time=c' }),
    );
    expect(missing.file).toBe('nope.csv');
    const noItemMap = await rejection(
      importDataset({
        path: dir,
        events: 'events.csv',
        map: 'user=who,item=what,time=when',
        items: 'items.tsv',
      }),
    );
    expect(noItemMap.field).toBe('--items');
  });
});

describe('import → writeDataset → readDataset', () => {
  async function roundTrip(result: ImportResult) {
    const out = join(dir, 'out');
    const manifest = await writeDataset(out, result.tables, {
      name: 'fixture',
      source: result.source,
      details: { report: result.report },
    });
    const back = await readDataset(out);
    expect(back.manifest.fingerprint).toBe(manifest.fingerprint);
    expect(back.manifest.counts).toEqual(result.report.counts);
    expect(back.manifest.details).toEqual(JSON.parse(JSON.stringify({ report: result.report })));
    expect(back.items.ids).toEqual(result.tables.items.ids);
    expect(back.items.categories).toEqual(result.tables.items.categories);
    expect(back.items.tags).toEqual(result.tables.items.tags);
    for (let i = 0; i < back.items.ids.length; i++) {
      expect(describeItem(back.items, i)).toEqual(describeItem(result.tables.items, i));
    }
    expect(back.users.ids).toEqual(result.tables.users.ids);
    expect(Array.from(back.users.ageBand)).toEqual(Array.from(result.tables.users.ageBand));
    expect(Array.from(back.users.country)).toEqual(Array.from(result.tables.users.country));
    const n = result.tables.events.length;
    expect(back.events.length).toBe(n);
    expect(Array.from(back.events.ts.subarray(0, n))).toEqual(Array.from(result.tables.events.ts));
    expect(Array.from(back.events.item.subarray(0, n))).toEqual(
      Array.from(result.tables.events.item),
    );
    expect(Array.from(back.events.value.subarray(0, n))).toEqual(
      Array.from(result.tables.events.value),
    );
  }

  it('round-trips a MovieLens 100k import', async () => {
    await write('u.item', `${uItem(1, 'Ça Film (1990)', '', [1, 2])}\n`, 'latin1');
    await write('u.user', '1|30|M|x|10001\n');
    await write('u.data', '1\t1\t4\t100\n1\t2\t3\t50\n');
    await roundTrip(await importDataset({ path: dir }));
  });

  it('round-trips a MovieLens CSV import', async () => {
    await write('movies.csv', 'movieId,title,genres\n1,"A, B (2000)",Drama|War\n');
    await write('tags.csv', 'userId,movieId,tag,timestamp\n1,1,Gritty,5\n');
    await write('ratings.csv', 'userId,movieId,rating,timestamp\n1,1,3.5,10\n2,1,4,5\n');
    await roundTrip(await importDataset({ path: dir }));
  });

  it('round-trips a MovieLens 1M import', async () => {
    await write('movies.dat', '1::Été (1999)::Drama\n', 'latin1');
    await write('users.dat', '1::F::18::3::12345\n');
    await write('ratings.dat', '1::1::4::20\n1::2::5::10\n');
    await roundTrip(await importDataset({ path: dir }));
  });

  it('round-trips a generic CSV import', async () => {
    await write('e.csv', 'u,i,t,k\na,x,2024-01-01T00:00:00Z,view\nb,x,1704067199,purchase\n');
    await write('i.csv', 'id,c\nx,Hats\n');
    await roundTrip(
      await importDataset({
        path: dir,
        events: 'e.csv',
        map: 'user=u,item=i,time=t,type=k',
        items: 'i.csv',
        itemMap: 'id=id,category=c',
      }),
    );
  });
});

describe('recsys data import', () => {
  it('imports into --out, prints the report, and refuses to overwrite without --force', async () => {
    await write('movies.csv', 'movieId,title,genres\n1,Film (2000),Drama\n');
    await write('ratings.csv', 'userId,movieId,rating,timestamp\n1,1,4,10\n1,1,x,11\n');
    const out = join(dir, 'datasets', 'mine');
    const result = await runDataImport(dir, { out, name: 'mine', progress: false }, {});
    expect(result.out).toBe(out);
    expect(result.manifest).toMatchObject({ name: 'mine', source: 'movielens' });
    expect(result.manifest.details).toMatchObject({
      importer: { format: 'movielens-csv', path: dir },
      report: { counts: { users: 1, items: 1, events: 1 } },
    });
    const text = formatImportReport(result);
    expect(text).toMatch(/ratings\.csv +events +read 2 +imported 1 +bad 1 \(bad_rating 1\)/);
    expect(text).toMatch(/first bad rows: line 3 bad_rating/);
    expect(text).toMatch(/items per category: Drama \(1\)/);
    expect(text).not.toMatch(/profile unknown/);

    const again = await rejection(runDataImport(dir, { out, progress: false }, {}));
    expect(again.field).toBe('--out');
    await expect(
      runDataImport(dir, { out, force: true, progress: false }, {}),
    ).resolves.toMatchObject({
      out,
    });
  });

  it('rejects a name that is not one folder name', async () => {
    const err = await rejection(runDataImport(dir, { name: '../up', progress: false }, {}));
    expect(err.field).toBe('--name');
  });

  it('adds import to the data command once', () => {
    const program = new Command('recsys');
    registerDataImportCommand(program);
    const data = dataCommand(program);
    expect(program.commands.filter((c) => c.name() === 'data')).toHaveLength(1);
    expect(data.commands.map((c) => c.name())).toContain('import');
  });
});
