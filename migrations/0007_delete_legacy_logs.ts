// Delete Model Data: the LegacyLog model is gone from the code; drop its entities.
import { defineMigration, DeleteModelData } from 'datastore-migrate';

export default defineMigration({
  description: 'Delete every LegacyLog entity',
  operations: [new DeleteModelData('LegacyLog')],
});
