import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';

/**
 * The edge of the gateway for what is not GraphQL yet: request bodies that are not UTF-8 or not JSON,
 * too large, or carrying text that is not Unicode (lone UTF-16 surrogates, which JSON can escape but no
 * tokenizer can read). Each gets HTTP 400/413 with a GraphQL-shaped error (a stable code and a message
 * that says what was wrong), never a framework page or an internal error further in.
 */

interface BodyError {
  status?: number;
  type?: string;
  limit?: number;
  length?: number;
  message: string;
}

/** body-parser's `verify`: rejects bytes that are not UTF-8 instead of decoding them to U+FFFD. */
export function requireUtf8(_req: IncomingMessage, _res: unknown, body: Buffer): void {
  if (!isUtf8(body))
    throw Object.assign(new Error('the request body is not valid UTF-8'), {
      status: 400,
      type: 'encoding.invalid',
    });
}

function describe(error: BodyError): string {
  switch (error.type) {
    case 'entity.parse.failed':
      return `the request body is not valid JSON: ${error.message}`;
    case 'entity.too.large':
      return `the request body has ${error.length} bytes; the limit is ${error.limit} (LOUPE_MAX_TEXT_CHARS sets it)`;
    case 'encoding.invalid':
      return error.message;
    default:
      return `the request body could not be read: ${error.message}`;
  }
}

export function sendError(res: Response, status: number, code: string, message: string): void {
  res.status(status).json({ errors: [{ message, extensions: { code } }] });
}

/** Express error handler after the body parser: its 4xx errors as GraphQL errors; anything else goes on. */
export function bodyErrors(error: BodyError, _req: Request, res: Response, next: NextFunction): void {
  const status = error.status ?? 500;
  if (status < 400 || status >= 500) {
    next(error);
    return;
  }
  sendError(res, status, 'BAD_REQUEST', describe(error));
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Where in the parsed body (e.g. `variables.text`) the first lone surrogate is, if any. */
export function loneSurrogate(value: unknown, at = ''): { at: string; index: number } | undefined {
  // iterative, so a body nested thousands of levels deep cannot exhaust the stack here
  const stack: [unknown, string][] = [[value, at]];
  while (stack.length > 0) {
    const [item, where] = stack.pop()!;
    if (typeof item === 'string') {
      const match = LONE_SURROGATE.exec(item);
      if (match) return { at: where || 'body', index: match.index };
    } else if (item && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) stack.push([child, where ? `${where}.${key}` : key]);
    }
  }
  return undefined;
}

/** Rejects text that is not Unicode anywhere in the request (query, variables, operation name). */
export function unicodeOnly(req: Request, res: Response, next: NextFunction): void {
  const found = loneSurrogate(req.body) ?? loneSurrogate(req.query);
  if (!found) {
    next();
    return;
  }
  sendError(
    res,
    400,
    'BAD_USER_INPUT',
    `${found.at} is not valid Unicode text: a lone surrogate at character ${found.index} (UTF-16 surrogates must come in pairs)`,
  );
}
