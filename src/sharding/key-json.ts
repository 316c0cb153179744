import { Key, type PathElement } from '../datastore';

/** A key as plain JSON, for layouts stored as text: `{ns, path: [{kind, id}|{kind, name}]}`. */
export interface KeyJson {
  ns: string;
  path: PathElement[];
}

export function keyToJson(key: Key): KeyJson {
  return { ns: key.namespace, path: key.path.map((e) => ({ ...e })) };
}

export function keyFromJson(json: KeyJson): Key {
  return new Key(json.path, json.ns);
}
