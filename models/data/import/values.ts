/**
 * Parsing of single values shared by the importers: times, numbers, release years, age bands,
 * regions and tags.
 */

/** Numbers at or above this are epoch milliseconds; below it, epoch seconds (about year 5138). */
export const EPOCH_MS_THRESHOLD = 1e11;

const ISO_DATE = /^\d{4}-\d{2}-\d{2}(?:$|[T ])/;
const HAS_ZONE = /(?:Z|[+-]\d{2}(?::?\d{2})?)$/i;

/**
 * A time as epoch milliseconds, or NaN. Each value is read on its own:
 * - a number below 1e11 is epoch seconds (fractions allowed), at or above it epoch milliseconds;
 * - otherwise an ISO 8601 date or date-time (`2024-03-01`, `2024-03-01T12:00:00Z`,
 *   `2024-03-01 12:00:00+02:00`); one without a zone is taken as UTC, not local time.
 */
export function parseTime(text: string): number {
  const value = text.trim();
  if (value === '') return NaN;
  const n = Number(value);
  if (Number.isFinite(n)) return Math.abs(n) >= EPOCH_MS_THRESHOLD ? n : n * 1000;
  if (!ISO_DATE.test(value)) return NaN;
  let iso = value.replace(' ', 'T');
  // Date.parse reads a date-time without a zone as local time; a data set must not depend on
  // the machine's time zone.
  if (iso.length > 10 && !HAS_ZONE.test(iso)) iso += 'Z';
  return Date.parse(iso);
}

/** A finite number, or NaN (empty text is NaN, not 0). */
export function parseNumber(text: string): number {
  const value = text.trim();
  return value === '' ? NaN : Number(value);
}

const TITLE_YEAR = /\((\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$/;

/**
 * The release year at the end of a MovieLens title, as Jan 1 of that year (UTC, epoch ms), or NaN:
 * `Toy Story (1995)` → 1995-01-01; a series' `(1975-1979)` → its first year.
 */
export function titleYearTime(title: string): number {
  const match = TITLE_YEAR.exec(title);
  if (match?.[1] === undefined) return NaN;
  const year = Number(match[1]);
  return year >= 1870 && year <= 2200 ? Date.UTC(year, 0, 1) : NaN;
}

const MONTHS: Record<string, number> = {
  jan: 0,
  feb: 1,
  mar: 2,
  apr: 3,
  may: 4,
  jun: 5,
  jul: 6,
  aug: 7,
  sep: 8,
  oct: 9,
  nov: 10,
  dec: 11,
};

/** MovieLens 100k's `01-Jan-1995` as epoch ms (UTC), or NaN. */
export function parseDayMonthYear(text: string): number {
  const match = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text.trim());
  if (match === null) return NaN;
  const month = MONTHS[(match[2] ?? '').toLowerCase()];
  if (month === undefined) return NaN;
  return Date.UTC(Number(match[3]), month, Number(match[1]));
}

/**
 * Age bands: the seven of MovieLens 1M, so 100k ages, 1M age codes and a generic `age` column all
 * land in one vocabulary.
 */
export const AGE_BANDS = ['under-18', '18-24', '25-34', '35-44', '45-49', '50-55', '56+'] as const;

/** The band of an age in years (or of a MovieLens 1M age code, which is the band's lower bound). */
export function ageBand(age: number): string | undefined {
  if (!Number.isFinite(age) || age < 0 || age > 130) return undefined;
  if (age < 18) return AGE_BANDS[0];
  if (age < 25) return AGE_BANDS[1];
  if (age < 35) return AGE_BANDS[2];
  if (age < 45) return AGE_BANDS[3];
  if (age < 50) return AGE_BANDS[4];
  if (age < 56) return AGE_BANDS[5];
  return AGE_BANDS[6];
}

/**
 * MovieLens users have a postal code, not a country. The "country" profile field becomes a
 * region: `US-<first digit>` for a US ZIP code (the ten national ZIP areas), `CA` for a Canadian
 * postal code, undefined for anything else.
 */
export function regionFromPostalCode(code: string): string | undefined {
  const value = code.trim().toUpperCase();
  if (/^\d{5}(?:-\d{4})?$/.test(value)) return `US-${value[0]}`;
  if (/^[A-Z]\d[A-Z]\s?\d[A-Z]\d?$/.test(value)) return 'CA';
  return undefined;
}

/**
 * A tag as stored: lower-case, `|` (the data set's tag separator) turned into a space, whitespace
 * collapsed and trimmed; '' when nothing is left.
 */
export function normalizeTag(text: string): string {
  return text
    .toLowerCase()
    .replace(/[\s|]+/g, ' ')
    .trim();
}
