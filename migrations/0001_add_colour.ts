// Add Field, step 3: the model already gives `colour` a default on load; this writes it into the
// entities (and so into the indexes) so that queries can filter on it. Values already present stay.
import { defineMigration, AddFieldData } from 'datastore-migrate';

export default defineMigration({
  description: 'Populate Person.colour so that it can be queried',
  operations: [new AddFieldData('Person', 'colour', { default: 'blue' })],
});
