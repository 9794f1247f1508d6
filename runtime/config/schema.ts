/**
 * The schema of `configs/config.yaml`. YAML keys are snake_case; the loader hands out the same tree
 * with camelCase keys as {@link ResolvedConfig}. Every option is optional in the schema because the
 * loader fills defaults before it validates: that keeps the emitted JSON Schema useful in an editor,
 * where a partial config file must not light up as "missing property".
 *
 * `patternErrorMessage` is a non-standard keyword that VS Code and the YAML language server show
 * instead of the raw regular expression; the loader uses the same text in its own messages.
 */
import { Type, type Static } from '@sinclair/typebox';

/** How actors talk to each other. */
export const Transport = {
  /** Everything in one process over the in-process bus. */
  InProc: 'inproc',
  /** Hosts talk over a NATS server. */
  Nats: 'nats',
} as const;
export type Transport = (typeof Transport)[keyof typeof Transport];

/** Log levels, the same names pino uses. */
export const LogLevel = {
  Fatal: 'fatal',
  Error: 'error',
  Warn: 'warn',
  Info: 'info',
  Debug: 'debug',
  Trace: 'trace',
  Silent: 'silent',
} as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

/** Distance of the item index: inner product (normalised embeddings), cosine, squared L2. */
export const IndexMetric = {
  InnerProduct: 'ip',
  Cosine: 'cos',
  L2Squared: 'l2sq',
} as const;
export type IndexMetric = (typeof IndexMetric)[keyof typeof IndexMetric];

/** How the item index stores its vectors. */
export const IndexQuantization = {
  Float32: 'f32',
  Float16: 'f16',
  Int8: 'i8',
} as const;
export type IndexQuantization = (typeof IndexQuantization)[keyof typeof IndexQuantization];

/** One NATS subject token, as accepted by `runtime/subjects.ts`. */
const TOKEN_PATTERN = '^[A-Za-z0-9_-]+$';

function int(minimum: number, maximum: number | undefined, def: number, description: string) {
  return Type.Optional(
    Type.Integer({
      minimum,
      ...(maximum === undefined ? {} : { maximum }),
      default: def,
      description,
    }),
  );
}

function num(minimum: number, maximum: number, def: number, description: string) {
  return Type.Optional(Type.Number({ minimum, maximum, default: def, description }));
}

function bool(def: boolean, description: string) {
  return Type.Optional(Type.Boolean({ default: def, description }));
}

function section<T extends Parameters<typeof Type.Object>[0]>(description: string, properties: T) {
  // `default: {}` lets the loader fill a section the file leaves out, and then its options.
  return Type.Optional(
    Type.Object(properties, { additionalProperties: false, default: {}, description }),
  );
}

const DeploymentSchema = section('Where this deployment lives on the bus.', {
  prefix: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$',
      patternErrorMessage:
        'must be dot-separated tokens of [A-Za-z0-9_-], such as recsys or prod.recsys',
      default: 'recsys',
      description:
        'Subject prefix of every subject, stream and bucket, so several deployments can share one NATS server.',
    }),
  ),
  transport: Type.Optional(
    Type.Union([Type.Literal(Transport.InProc), Type.Literal(Transport.Nats)], {
      default: Transport.InProc,
      description:
        'inproc: one process, in-process bus and in-memory stores; nats: hosts talk over NATS and Redis.',
    }),
  ),
});

const NatsSchema = section('The NATS connection (used when deployment.transport is nats).', {
  url: Type.Optional(
    Type.String({
      pattern: '^[^\\s,]+(\\s*,\\s*[^\\s,]+)*$',
      patternErrorMessage:
        'must be one NATS server URL or a comma-separated list, such as nats://127.0.0.1:4222',
      default: 'nats://127.0.0.1:4222',
      description: 'Server URL; a comma-separated list names several servers of one cluster.',
    }),
  ),
  name: Type.Optional(
    Type.String({
      minLength: 1,
      default: 'recsys',
      description: 'Connection name the server shows in its monitoring endpoints.',
    }),
  ),
  reconnect_wait_ms: int(10, 60_000, 250, 'Pause between reconnect attempts, in milliseconds.'),
  max_reconnect_attempts: int(
    -1,
    undefined,
    -1,
    'Reconnect attempts before the connection gives up; -1 retries forever.',
  ),
  local_requests: bool(
    true,
    'A request to a queue group (ranker, item shard) with a member in this process is served by that member without a trip through the server; nats sub does not see such requests.',
  ),
});

const RedisSchema = section('The Redis online feature store (used when transport is nats).', {
  url: Type.Optional(
    Type.String({
      pattern: '^rediss?://\\S+$',
      patternErrorMessage: 'must be a redis:// or rediss:// URL, such as redis://127.0.0.1:6379',
      default: 'redis://127.0.0.1:6379',
      description: 'Redis URL; rediss:// connects over TLS.',
    }),
  ),
});

const RuntimeSchema = section('The actor runtime.', {
  partitions: int(
    1,
    4096,
    64,
    'Keyed actors (users) hash into this many partitions; every host of a deployment must agree.',
  ),
  mailbox_capacity: int(
    1,
    1_000_000,
    1024,
    'Messages queued per actor instance before callers get an overloaded error.',
  ),
  passivate_after_ms: int(
    1000,
    86_400_000,
    300_000,
    'Idle time after which an actor instance writes its state behind and is deactivated, in milliseconds.',
  ),
  default_timeout_ms: int(
    1,
    600_000,
    1000,
    'Request deadline when the caller gives none, in milliseconds.',
  ),
  drain_timeout_ms: int(
    0,
    600_000,
    10_000,
    'How long a graceful shutdown or partition handoff waits for in-flight work, in milliseconds.',
  ),
  max_handler_ms: int(
    1,
    3_600_000,
    30_000,
    'A handler running longer than this is reported with a warning log, in milliseconds.',
  ),
});

const PlacementSchema = section('Partition ownership: leases and membership in NATS KV.', {
  lease_ttl_ms: int(
    500,
    600_000,
    6000,
    'Lifetime of a partition lease (the KV bucket TTL), in milliseconds.',
  ),
  renew_interval_ms: int(
    100,
    300_000,
    2000,
    'How often an owner renews its leases, in milliseconds; must be < lease_ttl_ms / 2.',
  ),
  heartbeat_interval_ms: int(
    100,
    60_000,
    1000,
    'How often a host announces itself in the members bucket, in milliseconds.',
  ),
  member_ttl_ms: int(
    500,
    600_000,
    6000,
    'A host not heard from for this long is taken as dead, in milliseconds; must be > heartbeat_interval_ms * 2.',
  ),
});

const ActorKindSchema = Type.String({
  pattern: TOKEN_PATTERN,
  patternErrorMessage: 'must be an actor kind of [A-Za-z0-9_-], such as user or ranker',
});

const HostSchema = section('This host process.', {
  actors: Type.Optional(
    Type.Array(ActorKindSchema, {
      uniqueItems: true,
      default: [],
      description: 'Actor kinds this host runs; empty runs every registered kind.',
    }),
  ),
  id: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9_-]*$',
      patternErrorMessage: 'must be empty or a token of [A-Za-z0-9_-], such as host-1',
      default: '',
      description: 'Host id, unique in the deployment; empty generates one at start-up.',
    }),
  ),
  groups: Type.Optional(
    Type.Record(
      Type.String({ pattern: TOKEN_PATTERN }),
      Type.Array(
        Type.String({
          pattern: TOKEN_PATTERN,
          patternErrorMessage: 'must be a group token of [A-Za-z0-9_-], such as 0 or v3',
        }),
        { minItems: 1, uniqueItems: true },
      ),
      {
        additionalProperties: false,
        default: {},
        description:
          'Groups this host serves per grouped actor kind, such as items: ["0", "1"]; a grouped kind this host runs must be listed.',
      },
    ),
  ),
});

const LogSchema = section('Logging (pino).', {
  level: Type.Optional(
    Type.Union(
      [
        Type.Literal(LogLevel.Fatal),
        Type.Literal(LogLevel.Error),
        Type.Literal(LogLevel.Warn),
        Type.Literal(LogLevel.Info),
        Type.Literal(LogLevel.Debug),
        Type.Literal(LogLevel.Trace),
        Type.Literal(LogLevel.Silent),
      ],
      { default: LogLevel.Info, description: 'Lowest level written.' },
    ),
  ),
  pretty: bool(false, 'Human-readable lines instead of JSON (for a terminal, not for production).'),
});

const MetricsSchema = section('Prometheus metrics.', {
  enabled: bool(true, 'Collect metrics and serve them for scraping.'),
  default_metrics: bool(true, 'Also collect process metrics: CPU, memory, event loop lag.'),
  port: int(0, 65_535, 9464, 'Port of the /metrics endpoint of a node process; 0 serves none.'),
});

const DataSchema = section('Where data sets, models and indexes live.', {
  dir: Type.Optional(
    Type.String({
      minLength: 1,
      default: '.data',
      description:
        'Root folder, relative to the working directory: data sets in <dir>/datasets/<name>, models in <dir>/models/<name>/<version>.',
    }),
  ),
});

const RetrievalSchema = section('The two-tower retrieval model and its training recipe.', {
  dims: int(8, 1024, 64, 'Embedding dimensions of both towers.'),
  history_length: int(1, 512, 50, 'Recent items pooled into the user tower.'),
  hidden_units: int(8, 4096, 128, 'Units of the hidden layer of each tower.'),
  batch_size: int(16, 65_536, 512, 'Training examples per step (in-batch negatives).'),
  epochs: int(1, 1000, 3, 'Passes over the training events.'),
  learning_rate: num(1e-5, 10, 0.3, 'Adagrad learning rate.'),
  temperature: num(0.001, 10, 0.1, 'Softmax temperature of the in-batch loss.'),
  logq_correction: bool(
    true,
    'Subtract log item frequency from the logits (sampling-bias correction).',
  ),
  seed: int(0, 2_147_483_647, 42, 'Seed of initialisation and shuffling: same seed, same model.'),
});

const ItemsSchema = section(
  'The item index: shards, HNSW parameters, search limits, live updates.',
  {
    shards: int(1, 1024, 1, 'Shards S of the item index; items go to shard fnv1a32(item id) % S.'),
    metric: Type.Optional(
      Type.Union(
        [
          Type.Literal(IndexMetric.InnerProduct),
          Type.Literal(IndexMetric.Cosine),
          Type.Literal(IndexMetric.L2Squared),
        ],
        {
          default: IndexMetric.InnerProduct,
          description:
            'ip: inner product (the towers emit normalised embeddings); cos: cosine; l2sq: squared Euclidean.',
        },
      ),
    ),
    quantization: Type.Optional(
      Type.Union(
        [
          Type.Literal(IndexQuantization.Float32),
          Type.Literal(IndexQuantization.Float16),
          Type.Literal(IndexQuantization.Int8),
        ],
        {
          default: IndexQuantization.Float16,
          description:
            'How the index stores vectors: f16 halves memory and searches faster than f32 at the same recall; i8 costs recall.',
        },
      ),
    ),
    connectivity: int(2, 128, 16, 'HNSW links per node (M): more is better recall, more memory.'),
    expansion_add: int(8, 4096, 128, 'HNSW candidate list while building (efConstruction).'),
    expansion_search: int(8, 4096, 64, 'HNSW candidate list while searching (ef).'),
    max_k: int(1, 10_000, 1000, 'Largest k a search may ask of one shard.'),
    workers: int(
      0,
      64,
      1,
      'Search worker threads per shard actor, each with its own view of the index; 0 searches on the actor thread (cheapest when several shards share a process on few cores). One keeps the threads of a process that serves several shards within its cores; raise it for a shard with cores of its own.',
    ),
    compaction_threshold: int(
      1,
      10_000_000,
      10_000,
      'Items in the mutable delta (upserts and deletes) that start a compaction into a new base file.',
    ),
    events_max_age_days: int(
      0,
      3650,
      30,
      'Days the item-events stream keeps upserts and deletes (0: no age limit). A replica that restarts replays them on top of its index: rebuild the index more often than this.',
    ),
    counter_max_items: int(
      1,
      100_000_000,
      100_000,
      'Items whose real-time counters a shard keeps (about 1 KB each); the least recently updated go first.',
    ),
    index_version: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_.-]*$',
        patternErrorMessage: 'must be empty or a folder name under <data.dir>/indexes',
        default: '',
        description:
          'Index folder under <data.dir>/indexes that shards serve; empty serves the newest one.',
      }),
    ),
  },
);

const FeaturesSchema = section(
  'The online feature store: definitions, the in-process cache, behaviour when Redis is down.',
  {
    definitions: Type.Optional(
      Type.String({
        minLength: 1,
        default: 'configs/features.yaml',
        description:
          'File of entity and feature-view definitions, relative to the working directory. An unknown view or field asked for at start-up is an error.',
      }),
    ),
    embedded_dataset: Type.Optional(
      Type.String({
        default: 'demo',
        description:
          'Embedded mode: the data set (a name under <data.dir>/datasets, or a path) whose batch features recsys start loads into its in-memory store; empty loads none. With transport nats, recsys materialize loads them into Redis instead.',
      }),
    ),
    cache_max_entries: int(
      0,
      100_000_000,
      100_000,
      'Entity rows (one view of one entity) the in-process read-through cache holds; 0 turns the cache off.',
    ),
    cache_ttl_ms: int(
      1,
      86_400_000,
      5_000,
      'How long a cached row is served before it is read from the store again; stream updates invalidate it sooner.',
    ),
    read_timeout_ms: int(
      1,
      60_000,
      50,
      'A read from the online store slower than this falls back to the defaults (marked degraded).',
    ),
    write_buffer_max: int(
      1,
      10_000_000,
      100_000,
      'Rows held for retry while the online store is unreachable; past it the oldest are dropped (counted).',
    ),
    write_retry_ms: int(
      10,
      600_000,
      1_000,
      'Pause between retries of buffered writes while the online store is unreachable.',
    ),
  },
);

const EventsSchema = section(
  'The event stream (feedback, impressions) and the real-time features computed from it.',
  {
    max_age_days: int(0, 3650, 7, 'Days the events stream keeps an event (0: no age limit).'),
    max_bytes: int(
      -1,
      Number.MAX_SAFE_INTEGER,
      -1,
      'Bytes the events stream keeps at most, oldest dropped first (-1: no limit).',
    ),
    duplicate_window_ms: int(
      100,
      86_400_000,
      120_000,
      'A publish repeating an event id within this window is stored once.',
    ),
    windows_minutes: Type.Optional(
      Type.Array(Type.Integer({ minimum: 1, maximum: 10_080 }), {
        minItems: 1,
        maxItems: 8,
        default: [5, 30],
        description:
          'Sliding windows of the real-time counters, in minutes, shortest first (user session features and item counters).',
      }),
    ),
    max_deliver: int(
      1,
      1000,
      5,
      'Deliveries of an event whose processing fails before it goes to the dead-letter subject.',
    ),
  },
);

const RecommendSchema = section(
  'The recommendation flow of the user actor: candidates, budgets, the session it keeps.',
  {
    candidates: int(
      1,
      10_000,
      100,
      "Items retrieval asks the item shards for, before seen and served items are dropped and the ranker scores them; as many as the ranker's training examples had (recsys train ranker --candidates), so the retrieval rank it sees is one it learned.",
    ),
    default_count: int(
      1,
      1000,
      10,
      'Items a recommendation returns when the request gives no count.',
    ),
    max_count: int(1, 1000, 100, 'Most items one recommendation may ask for.'),
    ranker_slot: Type.Optional(
      Type.String({
        pattern: TOKEN_PATTERN,
        default: 'gbdt',
        description:
          'The ranker slot (rank actor group) the default variant scores with; its model version comes from the registry.',
      }),
    ),
    timeout_ms: int(
      10,
      60_000,
      250,
      'Budget of a whole recommendation when the caller gives no deadline, in milliseconds.',
    ),
    retrieval_timeout_ms: int(
      1,
      60_000,
      60,
      'Budget of the user tower and the shard search; later, the reply falls back to popular items.',
    ),
    ranking_timeout_ms: int(
      1,
      60_000,
      60,
      'Budget of the ranker; later, the reply keeps the retrieval order.',
    ),
    replay_hours: int(
      0,
      24 * 30,
      24,
      "Hours of a user's events a user actor replays from the stream when it starts (after a restart or a move).",
    ),
    served_ttl_minutes: int(
      0,
      10_080,
      60,
      'An item served to a user is not served again for this long (0: served items may repeat).',
    ),
    max_session_items: int(
      1,
      100_000,
      1000,
      'Seen and served items a session remembers at most, oldest forgotten first.',
    ),
    popular_items: int(
      1,
      100_000,
      1000,
      'Most popular items kept for the fallback when retrieval fails or is late.',
    ),
  },
);

const GatewaySchema = section('The HTTP gateway (recsys gateway, and recsys start).', {
  host: Type.Optional(
    Type.String({
      minLength: 1,
      default: '0.0.0.0',
      description: 'Address the gateway listens on.',
    }),
  ),
  port: int(0, 65_535, 8000, 'Port the gateway listens on (0: any free port).'),
  body_limit_bytes: int(
    1024,
    100 * 1024 * 1024,
    1_048_576,
    'Largest request body accepted; a larger one is answered 413.',
  ),
  max_feedback_batch: int(1, 100_000, 1000, 'Most events one POST /feedback may carry.'),
  feedback_timeout_ms: int(
    10,
    60_000,
    2000,
    'Budget for storing feedback on the stream before the request is answered 504.',
  ),
});

/** The whole configuration file. */
export const ConfigSchema = Type.Object(
  {
    deployment: DeploymentSchema,
    nats: NatsSchema,
    redis: RedisSchema,
    runtime: RuntimeSchema,
    placement: PlacementSchema,
    host: HostSchema,
    log: LogSchema,
    metrics: MetricsSchema,
    data: DataSchema,
    retrieval: RetrievalSchema,
    items: ItemsSchema,
    features: FeaturesSchema,
    events: EventsSchema,
    recommend: RecommendSchema,
    gateway: GatewaySchema,
  },
  {
    additionalProperties: false,
    title: 'recsys configuration',
    description: 'configs/config.yaml: the one place to tune the system.',
  },
);

/** The configuration as written in YAML (snake_case keys, every option optional). */
export type RawConfig = Static<typeof ConfigSchema>;

/**
 * The schema as plain JSON Schema (draft-07), for editors. TypeBox keeps its bookkeeping under
 * symbol keys, which a JSON round trip drops.
 */
export function configJsonSchema(): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(ConfigSchema)) as Record<string, unknown>;
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...plain };
}

/** Where this deployment lives on the bus. */
export interface DeploymentConfig {
  /**
   * Subject prefix of every subject, stream and bucket.
   * @default 'recsys'
   */
  prefix: string;
  /**
   * `inproc` runs everything in one process; `nats` spreads hosts over NATS and Redis.
   * @default 'inproc'
   */
  transport: Transport;
}

/** The NATS connection. */
export interface NatsConfig {
  /**
   * Server URL, or a comma-separated list of servers of one cluster.
   * @default 'nats://127.0.0.1:4222'
   */
  url: string;
  /**
   * Connection name shown by the server.
   * @default 'recsys'
   */
  name: string;
  /**
   * Pause between reconnect attempts, in milliseconds (10..60000).
   * @default 250
   */
  reconnectWaitMs: number;
  /**
   * Reconnect attempts before giving up; -1 retries forever.
   * @default -1
   */
  maxReconnectAttempts: number;
  /**
   * Serve requests to a queue group with a member in this process in-process, not via the server.
   * @default true
   */
  localRequests: boolean;
}

/** The Redis online feature store. */
export interface RedisConfig {
  /**
   * `redis://` or `rediss://` URL.
   * @default 'redis://127.0.0.1:6379'
   */
  url: string;
}

/** The actor runtime. */
export interface RuntimeConfig {
  /**
   * Keyed actors hash into this many partitions (1..4096).
   * @default 64
   */
  partitions: number;
  /**
   * Queued messages per actor instance (1..1000000).
   * @default 1024
   */
  mailboxCapacity: number;
  /**
   * Idle time before an actor instance is deactivated, in milliseconds (1000..86400000).
   * @default 300000
   */
  passivateAfterMs: number;
  /**
   * Request deadline when the caller gives none, in milliseconds (1..600000).
   * @default 1000
   */
  defaultTimeoutMs: number;
  /**
   * How long a graceful shutdown waits for in-flight work, in milliseconds (0..600000).
   * @default 10000
   */
  drainTimeoutMs: number;
  /**
   * A handler running longer is reported with a warning, in milliseconds (1..3600000).
   * @default 30000
   */
  maxHandlerMs: number;
}

/** Partition leases and host membership. */
export interface PlacementConfig {
  /**
   * Partition lease lifetime (KV bucket TTL), in milliseconds (500..600000).
   * @default 6000
   */
  leaseTtlMs: number;
  /**
   * Lease renewal period, in milliseconds; always < `leaseTtlMs / 2`.
   * @default 2000
   */
  renewIntervalMs: number;
  /**
   * Membership heartbeat period, in milliseconds (100..60000).
   * @default 1000
   */
  heartbeatIntervalMs: number;
  /**
   * A host silent this long is dead, in milliseconds; always > `heartbeatIntervalMs * 2`.
   * @default 6000
   */
  memberTtlMs: number;
}

/** This host process. */
export interface HostConfig {
  /**
   * Actor kinds this host runs; empty means every registered kind.
   * @default []
   */
  actors: string[];
  /**
   * Host id; empty means one is generated at start-up.
   * @default ''
   */
  id: string;
  /**
   * Groups served per actor kind (for example `items: ['0', '1']`); a kind left out serves all.
   * Every key names a kind in `actors` when `actors` is not empty.
   * @default {}
   */
  groups: Record<string, string[]>;
}

/** Logging. */
export interface LogConfig {
  /**
   * Lowest level written.
   * @default 'info'
   */
  level: LogLevel;
  /**
   * Human-readable lines instead of JSON.
   * @default false
   */
  pretty: boolean;
}

/** Prometheus metrics. */
export interface MetricsConfig {
  /**
   * Collect and serve metrics.
   * @default true
   */
  enabled: boolean;
  /**
   * Also collect process metrics (CPU, memory, event loop lag).
   * @default true
   */
  defaultMetrics: boolean;
  /**
   * Port of the `/metrics` endpoint each node process serves for Prometheus; 0 serves none.
   * @default 9464
   */
  port: number;
}

/** The validated configuration, every option present, camelCase keys. */
/** Where data sets, models and indexes live. */
export interface DataConfig {
  /** Root folder, relative to the working directory. @default '.data' */
  dir: string;
}

/** The two-tower retrieval model and its training recipe. */
export interface RetrievalConfig {
  /** @default 64 */
  dims: number;
  /** Recent items pooled into the user tower. @default 50 */
  historyLength: number;
  /** @default 128 */
  hiddenUnits: number;
  /** @default 512 */
  batchSize: number;
  /** @default 3 */
  epochs: number;
  /** Adagrad learning rate. @default 0.3 */
  learningRate: number;
  /** @default 0.1 */
  temperature: number;
  /** @default true */
  logqCorrection: boolean;
  /** @default 42 */
  seed: number;
}

/** The item index: shards, HNSW parameters, search limits, live updates. */
export interface ItemsConfig {
  /** Shards of the item index. @default 1 */
  shards: number;
  /** @default 'ip' */
  metric: IndexMetric;
  /** How the index stores vectors. @default 'f16' */
  quantization: IndexQuantization;
  /** HNSW links per node. @default 16 */
  connectivity: number;
  /** HNSW candidate list while building. @default 128 */
  expansionAdd: number;
  /** HNSW candidate list while searching. @default 64 */
  expansionSearch: number;
  /** Largest k of one shard search. @default 1000 */
  maxK: number;
  /** Worker threads per shard actor. @default 1 */
  workers: number;
  /** Delta size that starts a compaction. @default 10000 */
  compactionThreshold: number;
  /** Days the item-events stream keeps updates (0: no age limit). @default 30 */
  eventsMaxAgeDays: number;
  /** Items whose real-time counters a shard keeps. @default 100000 */
  counterMaxItems: number;
  /** Index folder under `<data.dir>/indexes` that shards serve; empty: the newest. @default '' */
  indexVersion: string;
}

/** The online feature store. */
export interface FeaturesConfig {
  /** Entity and feature-view definitions. @default 'configs/features.yaml' */
  definitions: string;
  /** Embedded mode: the data set whose batch features `recsys start` loads. @default 'demo' */
  embeddedDataset: string;
  /** Rows the in-process cache holds; 0: no cache. @default 100000 */
  cacheMaxEntries: number;
  /** How long a cached row is served. @default 5000 */
  cacheTtlMs: number;
  /** A slower store read falls back to defaults. @default 50 */
  readTimeoutMs: number;
  /** Rows held for retry while the store is unreachable. @default 100000 */
  writeBufferMax: number;
  /** Pause between retries of buffered writes. @default 1000 */
  writeRetryMs: number;
}

/** The event stream and its real-time features. */
export interface EventsConfig {
  /** Days an event is kept (0: no age limit). @default 7 */
  maxAgeDays: number;
  /** Bytes kept at most (-1: no limit). @default -1 */
  maxBytes: number;
  /** Window in which a repeated event id is stored once. @default 120000 */
  duplicateWindowMs: number;
  /** Sliding windows of the real-time counters, minutes, shortest first. @default [5, 30] */
  windowsMinutes: number[];
  /** Deliveries before an event goes to the dead-letter subject. @default 5 */
  maxDeliver: number;
}

/** The recommendation flow of the user actor. */
export interface RecommendConfig {
  /** Items retrieval asks the shards for. @default 100 */
  candidates: number;
  /** Items returned when the request gives no count. @default 10 */
  defaultCount: number;
  /** Most items one recommendation may ask for. @default 100 */
  maxCount: number;
  /** The ranker slot of the default variant. @default 'gbdt' */
  rankerSlot: string;
  /** Budget of a whole recommendation without a caller deadline. @default 250 */
  timeoutMs: number;
  /** Budget of the user tower and the shard search. @default 60 */
  retrievalTimeoutMs: number;
  /** Budget of the ranker. @default 60 */
  rankingTimeoutMs: number;
  /** Hours of a user's events replayed when a user actor starts. @default 24 */
  replayHours: number;
  /** A served item is not served again for this long. @default 60 */
  servedTtlMinutes: number;
  /** Seen and served items a session remembers. @default 1000 */
  maxSessionItems: number;
  /** Popular items kept for the fallback. @default 1000 */
  popularItems: number;
}

/** The HTTP gateway. */
export interface GatewayConfig {
  /** @default '0.0.0.0' */
  host: string;
  /** @default 8000 */
  port: number;
  /** @default 1048576 */
  bodyLimitBytes: number;
  /** @default 1000 */
  maxFeedbackBatch: number;
  /** @default 2000 */
  feedbackTimeoutMs: number;
}

export interface ResolvedConfig {
  deployment: DeploymentConfig;
  nats: NatsConfig;
  redis: RedisConfig;
  runtime: RuntimeConfig;
  placement: PlacementConfig;
  host: HostConfig;
  log: LogConfig;
  metrics: MetricsConfig;
  data: DataConfig;
  retrieval: RetrievalConfig;
  items: ItemsConfig;
  features: FeaturesConfig;
  events: EventsConfig;
  recommend: RecommendConfig;
  gateway: GatewayConfig;
}

// Compile-time guard: the hand-written interfaces above must be exactly the schema with camelCase
// keys and every option present, so adding an option to one and not the other fails the build.
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;
type Resolved<T> = T extends readonly (infer U)[]
  ? Resolved<U>[]
  : T extends object
    ? {
        [K in keyof T as K extends string ? CamelCase<K> : K]-?: Resolved<Exclude<T[K], undefined>>;
      }
    : T;
type Equals<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const schemaMatchesResolvedConfig: Equals<ResolvedConfig, Resolved<RawConfig>> = true;
void schemaMatchesResolvedConfig;
