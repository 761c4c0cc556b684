import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGzip } from 'node:zlib';
import type { Request, Response } from 'express';
import { logger } from '../log';
import { routePattern } from './request-context';
import { setResponseHeaders } from './response-headers';

/**
 * Sends a large text body (a case bundle is up to ~100 MB of JSON) chunk by chunk, with
 * backpressure, never holding it whole; gzip-encoded (fastest level: JSON shrinks ~10×) when the
 * client accepts it. A client that goes away mid-body ends the stream; nothing is retried.
 */
export async function streamText(
  req: Request,
  res: Response,
  chunks: AsyncIterable<string>,
  options: { readonly contentType: string; readonly headers?: Readonly<Record<string, string>> },
): Promise<void> {
  res.status(200);
  res.setHeader('Content-Type', `${options.contentType}; charset=utf-8`);
  setResponseHeaders(res, options.headers ?? {});
  res.vary('Accept-Encoding');
  const gzip = req.acceptsEncodings('gzip', 'identity') === 'gzip';
  if (gzip) res.setHeader('Content-Encoding', 'gzip');
  const source = Readable.from(chunks, { objectMode: false });
  try {
    if (gzip) await pipeline(source, createGzip({ level: constants.Z_BEST_SPEED }), res);
    else await pipeline(source, res);
  } catch (err) {
    // Headers are gone: the only thing left to do is to end the response.
    logger.warn('streamed response ended early', { route: routePattern(req), errorName: err instanceof Error ? err.name : 'error' });
    res.destroy();
  }
}
