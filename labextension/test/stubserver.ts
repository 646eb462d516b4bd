/**
 * A real HTTP server on 127.0.0.1 that answers what a test tells it to and
 * records what it was asked, so the client's requests cross a real socket.
 */
import http from 'node:http';
import { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  /** Path and query as the server saw them. */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Answer {
  status: number;
  body: string;
  contentType?: string;
  /** Answer only after this long, to see how many such requests are open at once. */
  delayMs?: number;
}

export class StubServer {
  readonly requests: Recorded[] = [];
  /** What to answer, by "METHOD path" without the query; unknown routes get a 404 envelope. */
  readonly routes = new Map<string, Answer>();
  /** The most requests to a delayed route that were open at the same time. */
  maxOpenDelayed = 0;

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', chunk => (body += chunk));
      req.on('end', () => {
        const url = req.url ?? '';
        this.requests.push({ method: req.method ?? '', url, headers: req.headers, body });
        const answer = this.routes.get(`${req.method} ${url.split('?')[0]}`) ?? {
          status: 404,
          body: JSON.stringify(envelope(404, 'NOT_FOUND', `no route ${url}`, null))
        };
        const send = (): void => {
          res.writeHead(answer.status, {
            'Content-Type': answer.contentType ?? 'application/json'
          });
          res.end(answer.body);
        };
        if (answer.delayMs === undefined) {
          send();
          return;
        }
        this.openDelayed++;
        this.maxOpenDelayed = Math.max(this.maxOpenDelayed, this.openDelayed);
        setTimeout(() => {
          this.openDelayed--;
          send();
        }, answer.delayMs);
      });
    });
    await new Promise<void>(resolve => this.server!.listen(0, '127.0.0.1', resolve));
  }

  get origin(): string {
    const { port } = this.server!.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  answer(method: string, path: string, status: number, body: unknown, delayMs?: number): void {
    this.routes.set(`${method} ${path}`, { status, body: JSON.stringify(body), delayMs });
  }

  async stop(): Promise<void> {
    // Drop the client's keep-alive sockets, or close() waits for them to time out.
    this.server?.closeAllConnections();
    await new Promise<void>(resolve => this.server?.close(() => resolve()));
  }

  private server: http.Server | null = null;
  private openDelayed = 0;
}

/** openapi.yaml's envelope. */
export function envelope(
  code: number,
  status: string,
  message: string,
  result: unknown,
  attributes: Record<string, number> = {}
): unknown {
  return { status, code, success: code < 400, message, result, attributes };
}
