import { readFileSync } from 'node:fs';
import { Root, type Type } from 'protobufjs';

let root: Root | undefined;

/** The google.datastore.v1 protos the official client ships, read once: the codecs that work on bytes share them with gax. */
function datastoreRoot(): Root {
  root ??= Root.fromJSON(JSON.parse(readFileSync(require.resolve('@google-cloud/datastore/build/protos/protos.json'), 'utf8')));
  return root;
}

/** A message type of google.datastore.v1, e.g. `Value`. */
export function datastoreType(name: string): Type {
  return datastoreRoot().lookupType(`google.datastore.v1.${name}`);
}
