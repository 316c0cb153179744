// Copy Data from One Model to Another: ids, names and ancestors are kept; existing copies are not overwritten.
import { defineMigration, CopyModelData } from 'datastore-migrate';

export default defineMigration({
  description: 'Copy every Person into PersonArchive',
  operations: [new CopyModelData('Person', 'PersonArchive')],
});
