/**
 * The load generator's HTTP client: JSON over keep-alive connections of one `http.Agent` with
 * many sockets, so an open loop at a few thousand requests per second reuses its connections
 * instead of opening one per request, and a slow reply never holds the next request back.
 */
import { Agent, request } from 'node:http';

export interface HttpReply<T> {
  status: number;
  body: T;
}

/** A failure below HTTP (connection, timeout), or an answer that is not JSON. */
export class E2eHttpError extends Error {
  override readonly name = 'E2eHttpError';
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface GatewayClientOptions {
  /** e.g. `http://127.0.0.1:8000`. */
  baseUrl: string;
  /** Connections kept open at most. @default 512 */
  maxSockets?: number;
  /** A request not answered within this fails with code `timeout`. @default 5000 */
  timeoutMs?: number;
}

export class GatewayClient {
  private readonly agent: Agent;
  private readonly host: string;
  private readonly port: number;
  private readonly timeoutMs: number;

  constructor(options: GatewayClientOptions) {
    const url = new URL(options.baseUrl);
    this.host = url.hostname;
    this.port = Number(url.port);
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: options.maxSockets ?? 512,
      maxFreeSockets: options.maxSockets ?? 512,
      // Reuse the most recently used socket: fewer live connections for the server to poll.
      scheduling: 'lifo',
    });
  }

  /** `POST path` with a JSON body; resolves with any status, rejects below HTTP. */
  post<T>(path: string, payload: unknown): Promise<HttpReply<T>> {
    return this.send<T>('POST', path, JSON.stringify(payload));
  }

  get<T>(path: string): Promise<HttpReply<T>> {
    return this.send<T>('GET', path, undefined);
  }

  /** The body as text, for endpoints that do not answer JSON (`/metrics`). */
  getText(path: string): Promise<HttpReply<string>> {
    return this.send<string>('GET', path, undefined, false);
  }

  private send<T>(
    method: string,
    path: string,
    body: string | undefined,
    json = true,
  ): Promise<HttpReply<T>> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.host,
          port: this.port,
          path,
          method,
          agent: this.agent,
          headers:
            body === undefined
              ? {}
              : {
                  'content-type': 'application/json',
                  'content-length': Buffer.byteLength(body),
                },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', (err) =>
            reject(new E2eHttpError(err.message, 'response', { cause: err })),
          );
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (!json) {
              resolve({ status, body: text as T });
              return;
            }
            try {
              resolve({ status, body: (text === '' ? {} : JSON.parse(text)) as T });
            } catch (err) {
              reject(
                new E2eHttpError(`${method} ${path}: ${status}, not JSON`, 'body', { cause: err }),
              );
            }
          });
        },
      );
      req.setTimeout(this.timeoutMs, () => {
        req.destroy(
          new E2eHttpError(`${method} ${path}: no answer in ${this.timeoutMs} ms`, 'timeout'),
        );
      });
      req.on('error', (err) =>
        reject(
          err instanceof E2eHttpError
            ? err
            : new E2eHttpError(err.message, 'connection', { cause: err }),
        ),
      );
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Polls `probe` until it resolves true, or rejects after `timeoutMs` with the last failure. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 250,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) {
      const detail = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`${what}: not ready after ${timeoutMs} ms${detail}`, { cause: last });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
