import { actorSuite } from '../helpers/actor-suite.js';
import { testCluster } from '../helpers/cluster.js';

actorSuite('the in-process transport', (options) =>
  Promise.resolve(testCluster(undefined, options)),
);
