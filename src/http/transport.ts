import http from 'node:http';
import https from 'node:https';

/**
 * A small HTTP/1.1 transport on node:http with keep-alive agents. Used where volume matters
 * (the Avito client pages through tens of thousands of messages): measured at about half the
 * time and a third of the CPU of `fetch` for the same requests (docs/benchmarks.md).
 */
export interface TransportRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string | Buffer | undefined;
  timeoutMs: number;
}

export interface TransportResponse {
  status: number;
  header(name: string): string | null;
  text: string;
  /** The raw bytes, for downloads. */
  bytes: Buffer;
}

export class Transport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(maxSockets: number) {
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets });
  }

  request(r: TransportRequest): Promise<TransportResponse> {
    const secure = r.url.protocol === 'https:';
    const lib = secure ? https : http;
    const headers: Record<string, string | number> = { ...r.headers };
    if (r.body !== undefined) headers['content-length'] = Buffer.byteLength(r.body);
    return new Promise((resolve, reject) => {
      const req = lib.request(r.url, { method: r.method, headers, agent: secure ? this.httpsAgent : this.httpAgent }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const bytes = Buffer.concat(parts);
          resolve({
            status: res.statusCode ?? 0,
            header: (name) => {
              const v = res.headers[name.toLowerCase()];
              return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
            },
            get text() {
              return bytes.toString('utf8');
            },
            bytes,
          });
        });
      });
      req.setTimeout(r.timeoutMs, () => req.destroy(Object.assign(new Error(`timed out after ${r.timeoutMs} ms`), { code: 'ETIMEDOUT', name: 'TimeoutError' })));
      req.on('error', reject);
      req.end(r.body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
