import { invalidArgument } from './errors';

/**
 * List pages. The token carries the sort key of the last item returned, so a page is stable even
 * when items are added or removed between calls.
 */
export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

export function pageOf<T, K extends string | number>(
  sorted: readonly T[],
  keyOf: (item: T) => K,
  request: { pageSize?: number; pageToken?: string },
  limits: { defaultSize: number; maxSize: number },
): Page<T> {
  const requested = request.pageSize ?? 0;
  if (requested < 0) throw invalidArgument(`page_size must not be negative, got ${requested}`);
  const size = Math.min(requested || limits.defaultSize, limits.maxSize);
  let start = 0;
  if (request.pageToken) {
    const after = decodeToken(request.pageToken);
    start = sorted.findIndex((item) => keyOf(item) > after);
    if (start === -1) start = sorted.length;
  }
  const items = sorted.slice(start, start + size);
  const last = items[items.length - 1];
  const more = start + size < sorted.length && last !== undefined;
  return { items, nextPageToken: more ? encodeToken(keyOf(last)) : '' };
}

const encodeToken = (key: string | number): string => Buffer.from(JSON.stringify({ after: key })).toString('base64url');

function decodeToken(token: string): string | number {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (parsed && typeof parsed === 'object' && 'after' in parsed) {
      const after = parsed.after;
      if (typeof after === 'string' || typeof after === 'number') return after;
    }
  } catch {
    // fall through to the error below
  }
  throw invalidArgument('Invalid page_token');
}
