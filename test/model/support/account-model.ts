import { defineModel, field } from '../../../src/model';

/** The model the unique-field tests save, in this process and in child processes alike. */
export const Account = defineModel('Account', {
  email: field.string({ unique: true }),
  handle: field.string({ nullable: true, unique: true }),
});
