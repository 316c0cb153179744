/**
 * Splits items into batches of at most `maxItems` whose estimated sizes add up to at most `maxBytes`.
 * An item larger than `maxBytes` travels alone; the server then gives the precise error.
 */
export function chunkBy<T>(items: readonly T[], maxItems: number, maxBytes = Infinity, sizeOf: (item: T) => number = () => 0): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length > 0 && (current.length >= maxItems || bytes + size > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
