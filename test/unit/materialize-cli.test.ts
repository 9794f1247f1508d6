import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command, CommanderError } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { registerDataCommands } from '../../models/cli/data.js';
import {
  parseViews,
  registerMaterializeCommands,
  runDataFeatures,
  runMaterialize,
} from '../../models/cli/materialize.js';
import { writeDataset } from '../../models/data/dataset-io.js';
import { DatasetFormatError } from '../../models/data/errors.js';
import type { EventTable, ItemTable, UserTable } from '../../models/data/types.js';
import { readFeatureTablesManifest } from '../../models/features/index.js';
import { ConfigError } from '../../runtime/errors.js';

function tables(): { items: ItemTable; users: UserTable; events: EventTable } {
  return {
    items: {
      ids: ['a', 'b'],
      categories: ['x'],
      category: Int32Array.from([0, 0]),
      tags: [],
      tagOffsets: new Int32Array(3),
      tagIds: new Int32Array(0),
      createdAt: Float64Array.from([1, 2]),
    },
    users: {
      ids: ['u'],
      ageBand: Int32Array.of(-1),
      country: Int32Array.of(-1),
      device: Int32Array.of(-1),
      ageBands: [],
      countries: [],
      devices: [],
      signupAt: Float64Array.of(0),
    },
    events: {
      length: 1,
      user: Int32Array.of(0),
      item: Int32Array.of(1),
      ts: Float64Array.of(10),
      type: Uint8Array.of(0),
      value: Float32Array.of(0),
    },
  };
}

let dir: string;
let stderr: string[];
let stdout: string[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'recsys-materialize-cli-'));
  stderr = [];
  stdout = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr.push(String(chunk));
    return true;
  });
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout.push(String(chunk));
    return true;
  });
});

afterEach(async () => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** A config file under the test folder: data sets in `<dir>/data/datasets`. */
async function config(transport: 'inproc' | 'nats'): Promise<string> {
  const path = join(dir, `${transport}.yaml`);
  await writeFile(
    path,
    `deployment:\n  transport: ${transport}\n` +
      // Nothing listens there: every test below must fail before connecting.
      `redis:\n  url: redis://127.0.0.1:1\n` +
      `data:\n  dir: ${join(dir, 'data')}\n`,
  );
  return path;
}

/** The program with the commands, throwing commander's errors instead of exiting. */
function program(): { run: (...args: string[]) => Promise<unknown>; errors: string[] } {
  const errors: string[] = [];
  const root = new Command('recsys')
    .exitOverride()
    .configureOutput({ writeErr: (s) => errors.push(s), writeOut: () => undefined });
  registerDataCommands(root);
  registerMaterializeCommands(root);
  return {
    errors,
    run: (...args: string[]) =>
      root.parseAsync(['node', 'recsys', ...args]).catch((err: unknown) => err),
  };
}

describe('recsys materialize', () => {
  it('refuses an inproc deployment, saying where batch features go instead', async () => {
    const inproc = await config('inproc');
    await writeDataset(join(dir, 'data', 'datasets', 'demo'), tables(), {
      name: 'demo',
      source: 'csv',
      details: {},
    });
    const err = await runMaterialize({ data: 'demo', config: inproc }, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ path: 'deployment.transport' });

    const { run } = program();
    await run('materialize', '--data', 'demo', '-c', inproc);
    expect(process.exitCode).toBe(2);
    const message = stderr.join('');
    expect(message).toMatch(/^recsys: deployment\.transport: is inproc/);
    expect(message).toMatch(/loads the batch features of its data set when it starts/);
    expect(message).toMatch(/writes to the Redis online store .* deployment\.transport nats/);
    expect(stdout).toEqual([]);

    // The environment decides the transport as much as the file does.
    const nats = await config('nats');
    await expect(
      runMaterialize({ data: 'demo', config: nats }, { RECSYS_TRANSPORT: 'inproc' }),
    ).rejects.toThrow(/is inproc: the embedded node/);
  });

  it('rejects missing and malformed arguments', async () => {
    const { run, errors } = program();
    expect(await run('materialize')).toBeInstanceOf(CommanderError);
    expect(errors.join('')).toMatch(/required option '--data <name\|path>' not specified/);
    errors.length = 0;
    expect(await run('materialize', '--data', 'x', '--batch-size', '0')).toMatchObject({
      code: 'commander.invalidArgument',
    });
    expect(errors.join('')).toMatch(/--batch-size <n>' argument '0' is invalid/);
    expect(() => parseViews('user_profile,,item_profile')).toThrow(/separated by commas/);
    expect(parseViews(' user_profile , item_profile')).toEqual(['user_profile', 'item_profile']);
  });

  it('names a bad view, a missing data set and out-of-date tables before connecting', async () => {
    const nats = await config('nats');
    const datasetDir = join(dir, 'data', 'datasets', 'small');
    await writeDataset(datasetDir, tables(), { name: 'small', source: 'csv', details: {} });
    const { run } = program();

    await run('materialize', '--data', 'small', '-c', nats, '--views', 'item_profile,nope');
    expect(process.exitCode).toBe(2);
    expect(stderr.join('')).toMatch(/recsys: views: unknown view nope \(batch views: /);

    stderr.length = 0;
    await run('materialize', '--data', 'missing', '-c', nats);
    expect(process.exitCode).toBe(2);
    expect(stderr.join('')).toMatch(/missing: no data set here/);

    const err = await runMaterialize({ data: 'small', config: nats }, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as Error).message).toMatch(
      /there are no feature tables; rebuild them with `recsys data features --data small`/,
    );
  });
});

describe('recsys data features', () => {
  it('builds the tables of a data set named under <data.dir>/datasets', async () => {
    const nats = await config('nats');
    const datasetDir = join(dir, 'data', 'datasets', 'small');
    await writeDataset(datasetDir, tables(), { name: 'small', source: 'csv', details: {} });
    const built = await runDataFeatures({ data: 'small', config: nats }, {});
    expect(built.dir).toBe(datasetDir);
    expect(Object.values(built.manifest.views).map((v) => [v.view, v.rows])).toEqual([
      ['user_profile', 1],
      ['item_profile', 2],
      ['item_popularity', 2],
    ]);
    expect(await readFeatureTablesManifest(datasetDir)).toEqual(built.manifest);

    const { run } = program();
    await run('data', 'features', '--data', datasetDir, '-c', nats);
    expect(process.exitCode).toBeUndefined();
    expect(stdout.join('')).toMatch(
      /^feature tables: user_profile 1 rows, item_profile 2 rows, item_popularity 2 rows\nwrote .*features in/,
    );
    stdout.length = 0;
    await run('data', 'features', '--data', join(dir, 'nowhere'), '-c', nats);
    expect(process.exitCode).toBe(2);
    expect(stderr.join('')).toMatch(/nowhere: no data set here/);
  });
});
