/**
 * Binding a built gateway to a port, and the address a person can paste into a browser or curl.
 */
import type { AddressInfo } from 'node:net';
import type { GatewayApp } from './app.js';

export interface ListeningGateway {
  /** `http://<host>:<port>`, with a wildcard address shown as `127.0.0.1`. */
  readonly url: string;
  readonly port: number;
  /** Stops taking connections and waits for the requests in flight. */
  close(): Promise<void>;
}

/** Listens on `host:port` (port 0: any free port). */
export async function listenGateway(
  app: GatewayApp,
  options: { host: string; port: number },
): Promise<ListeningGateway> {
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address() as AddressInfo;
  const wildcard = options.host === '0.0.0.0' || options.host === '::';
  const host = wildcard
    ? '127.0.0.1'
    : address.family === 'IPv6'
      ? `[${address.address}]`
      : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: () => (closing ??= app.close()),
  };
}
