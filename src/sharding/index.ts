export { type ShardWork, type EntityDecision, type EntityWarning, type ApplyContext, MAX_BATCH } from './work';
export { type KeyRange, inRange, pickSplitPoints, rangesBetween } from './ranges';
export {
  splitNamespace,
  scatterSample,
  cutFromStream,
  cutPage,
  keyPages,
  shardCountFromSample,
  OVERSAMPLING,
  PAGE_KEYS,
  STREAM_SHARD_KEYS,
  MAX_DEFAULT_SHARDS,
  type CutPage,
  type SplitTarget,
  type StreamCut,
} from './splitter';
export { ensureLayout, newLayout, appendPage, loadLayout, requireLayout, type LayoutRequest } from './layouts';
export { KeyReadAhead, type ReadAheadWork } from './read-ahead';
export { Job, jobTotals, rateFor, type JobWork, type JobSliceOptions, type JobTotals } from './job';
export { type JobLayout, type LayoutShard, type PendingNamespace } from './job-layout';
export { type ShardState } from './checkpoint';
export { closeJob, jobChangedData } from './close';
export { type Fence } from './fence';
export { pauseAt } from './test-pause';
export { KeySet } from './key-set';
export { runShardSlice, type SliceOptions, type SliceResult } from './processor';
export { applyBatch, type DryRunSample } from './apply';
export { undoHoldings, pruneBeforeImages, imageMarks, markImagesKept, forgetImagesKept, type UndoHolding, type PruneResult, type PruneOptions } from './undo-data';
export { storedBytes } from './entity-size';
export { IMAGE_KIND, ABSENT, batchImages, imageRanges, scannedRanges, decodeImage, restoredImage, operationOfJob, writtenKeyOf, type UndoSpec, type BeforeImage } from './before-images';
export { matchesFilters, pushedDown } from './filters';
export { zeroCounts, zeroJobCounts, addCounts, mergeWarnings, formatWarnings, type Counts, type JobCounts, type Warnings } from './counts';
export { clearJobState, clearMigrationJobs, loadShardStates, summarize } from './progress';
export { batchLength } from './batcher';
export { keyFromJson, keyToJson, type KeyJson } from './key-json';
export { saveManifests, loadManifest, type CutShard } from './key-manifest';
export { RateLimiter, checkRate, layoutRate, rateProblem, sliceShare, RAMP_STEP_MS, RATE_WINDOW_MS, type RateOption, type RateLimiterOptions, type Grant } from './rate-limit';
