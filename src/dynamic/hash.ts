import { createHash } from 'node:crypto';

export { canonicalJson, type JsonValue } from '../model';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
