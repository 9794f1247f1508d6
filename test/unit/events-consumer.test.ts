import { MemoryStreamStore } from '../../runtime/stream/index.js';
import { eventsConsumerSuite } from '../helpers/events-consumer-suite.js';

eventsConsumerSuite('the memory stream', () => {
  const store = new MemoryStreamStore();
  return Promise.resolve({
    client: () =>
      Promise.resolve({
        store,
        // In memory a reader has no connection to lose: it leaves the durable at once, its batch
        // still running, as a reader whose connection closed would.
        crash: (consumer) => {
          void consumer.stop();
          return Promise.resolve();
        },
      }),
    cleanup: () => Promise.resolve(),
  });
});
