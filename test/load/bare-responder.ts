/**
 * The baseline the `runtime` benchmark compares against: a plain nats.js responder, nothing but
 * `subscribe` and `msg.respond(msg.data)`. Run as a child process:
 *
 *   node --import tsx test/load/bare-responder.ts <nats-url> <subject>
 *
 * It connects with the options the runtime's NATS transport uses (no async stack traces), so the
 * comparison measures the runtime, not a connection setting. Prints `bare_ready` once subscribed.
 */
import { connect } from '@nats-io/transport-node';

const [url, subject] = process.argv.slice(2);
if (url === undefined || subject === undefined) {
  process.stderr.write('usage: bare-responder.ts <nats-url> <subject>\n');
  process.exit(2);
}

const nc = await connect({ servers: url, name: 'bench-bare-responder', noAsyncTraces: true });
nc.subscribe(subject, {
  callback: (err, msg) => {
    if (err === null) msg.respond(msg.data);
  },
});
await nc.flush();
process.stdout.write(`${JSON.stringify({ evt: 'bare_ready', pid: process.pid })}\n`);

const shutdown = (): void => {
  nc.drain().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
