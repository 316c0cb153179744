/** What the `dsmigrate emulator` command (src/cli) takes from the emulators: the only way in from src/. */
export { startLocalEmulators, type LocalEmulators, type LocalEmulatorsOptions } from './local';
export { EMULATOR_FLAVOURS, EmulatorSetupError, type EmulatorFlavour } from './datastore-emulator';
export type { CloudTasksEmulatorOptions } from './cloud-tasks';
