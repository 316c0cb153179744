// Copy Data for a Model into a Different Namespace: the companies first, so that every copied person
// finds its parent in the new namespace.
import { defineMigration, CopyModelDataToNamespace } from 'datastore-migrate';

export default defineMigration({
  description: 'Give tenant-b a copy of the companies and people',
  operations: [new CopyModelDataToNamespace('Company', 'tenant-b'), new CopyModelDataToNamespace('Person', 'tenant-b')],
});
