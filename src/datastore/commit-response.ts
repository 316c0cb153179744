import { Reader } from 'protobufjs/minimal';
import { lengthDelimitedEnd, nextField, readInt64 } from './packed-keys';
import { BYTES, tag, VARINT } from './wire';

/** What a commit answered, read only where asked: a batch's commit has hundreds of results and needs one. */
export interface CommitResult {
  /** The version the mutation at `index` (in the order sent) left its entity at; undefined where none was answered. */
  versionAt(index: number): string | undefined;
}

/** CommitResponse.mutation_results (3); MutationResult.version (4). */
const MUTATION_RESULT = tag(3, BYTES);
const VERSION = tag(4, VARINT);

/** A CommitResponse, kept as bytes until a version is asked for. */
export function decodeCommitResponse(bytes: Uint8Array): CommitResult {
  return {
    versionAt(index) {
      const reader = Reader.create(bytes);
      for (let seen = 0; nextField(reader, reader.len, MUTATION_RESULT); seen++) {
        const end = lengthDelimitedEnd(reader);
        if (seen === index) return nextField(reader, end, VERSION) ? readInt64(reader) : undefined;
        reader.pos = end;
      }
      return undefined;
    },
  };
}
