import { testCluster } from '../helpers/cluster.js';
import { itemShardSuite } from '../helpers/item-shard-suite.js';

itemShardSuite('the in-process transport', (options) =>
  Promise.resolve(testCluster(undefined, options)),
);
