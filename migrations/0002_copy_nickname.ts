// Rename Field, step 4a: the app now writes both fields; copy the old values across.
import { defineMigration, CopyFieldData } from 'datastore-migrate';

export default defineMigration({
  description: 'Rename Person.nickname to displayName: copy the data',
  operations: [new CopyFieldData('Person', 'nickname', 'displayName')],
});
