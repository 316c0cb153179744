// Custom Changes: any per-entity function. Entities it leaves unchanged are not written.
import { defineMigration, MapFunctionOnEntities } from 'datastore-migrate';

export default defineMigration({
  description: 'Store Person emails in lower case',
  operations: [
    new MapFunctionOnEntities(
      'Person',
      (person) => {
        const email = person.get('email');
        if (typeof email === 'string' && email !== email.toLowerCase()) person.set('email', email.toLowerCase());
      },
      // What `dsmigrate verify` checks on every Person once this ran.
      { verify: (person) => typeof person.get('email') !== 'string' || person.get('email') === String(person.get('email')).toLowerCase() },
    ),
  ],
});
