// Rename Field, step 4c, and Remove Field: the model no longer has `nickname`; reclaim its storage.
import { defineMigration, RemoveFieldData } from 'datastore-migrate';

export default defineMigration({
  description: 'Remove the old Person.nickname data',
  operations: [new RemoveFieldData('Person', 'nickname')],
});
