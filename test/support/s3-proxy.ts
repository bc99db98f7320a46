// A thin HTTP proxy in front of the local S3 store that refuses some requests the way S3
// refuses them (403 AccessDenied, as a bucket policy would) and forwards the rest unchanged,
// Host header included, so SigV4 signatures made for the proxy's address still verify.
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface S3Proxy {
  endpoint: string;
  /** Requests refused so far. */
  refused: number;
  close(): Promise<void>;
}

const ACCESS_DENIED = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>';

export async function startS3Proxy(target: string, refuse: (req: IncomingMessage) => boolean): Promise<S3Proxy> {
  const upstream = new URL(target);
  const proxy: S3Proxy = {
    endpoint: '',
    refused: 0,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server: Server = createServer((req, res) => {
    if (refuse(req)) {
      proxy.refused++;
      req.resume();
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end(ACCESS_DENIED);
      return;
    }
    const forwarded = request({
      host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers,
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
