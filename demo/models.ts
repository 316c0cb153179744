import { defineModel, field } from '../src';

/**
 * The demo app's model after the playbooks: `colour` was added with a default (Add Field), `nickname`
 * was renamed to `displayName` (Rename Field), and emails are stored lower-case (a custom map).
 */
export const Company = defineModel('Company', { name: field.string() });

export const Person = defineModel('Person', {
  name: field.string(),
  email: field.string(),
  displayName: field.string({ nullable: true }),
  colour: field.string({ default: 'blue' }),
  bio: field.string({ default: '', indexed: false }),
  visits: field.integer({ default: 0 }),
});
