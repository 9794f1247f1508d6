import { testCluster } from '../helpers/cluster.js';
import { itemShardLiveSuite } from '../helpers/item-shard-live-suite.js';

itemShardLiveSuite('the in-process transport', (options) =>
  Promise.resolve(testCluster(undefined, options)),
);
