export { Operation } from './operation';
export { DataOperation, isDataOperation, type KindOrModel, type Postcondition } from './data-operation';
export { RunFunction, isRunFunction, type FunctionContext, type StepFunction, type RunFunctionOptions } from './run-function';
export { type ScanOptions, type NamespaceOption, type FilterOption, type Scope, type UndoOption, DEFAULT_BATCH_SIZE, DEFAULT_UNDO_RETAIN, retentionMs } from './options';
export {
  RestoreBeforeImages,
  checkUndoConflicts,
  backOutOf,
  canBackOut,
  restoresBeforeImages,
  undoNamespaces,
  applyProjectUndo,
  projectUndoProblem,
  UNDO_OPERATION_TYPES,
  UNDO_CONFLICTS,
  type ProjectUndo,
  type UndoConflicts,
} from './restore-before-images';
export { AddFieldData, type AddFieldDataOptions } from './add-field-data';
export { type DefaultValue } from './field-data';
export { RemoveFieldData, type RemoveFieldDataOptions } from './remove-field-data';
export { CopyFieldData, type CopyFieldDataOptions } from './copy-field-data';
export { DeleteModelData } from './delete-model-data';
export { CopyModelData } from './copy-model-data';
export { CopyModelDataToNamespace, type CopyToNamespaceOptions } from './copy-model-data-to-namespace';
export { DeleteCopiedData, CopyOperation, targetKey, type CopyOptions, type CopyTarget } from './copies';
export { MapFunctionOnEntities, type MapFunction, type MapContext, type MapOptions } from './map-function-on-entities';
export { BuildUniqueMarkers, DropUniqueMarkers, type DuplicateGroup } from './build-unique-markers';
