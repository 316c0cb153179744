import { canonicalJson, schemaChange, shapeOf, showType, stateOfModels, storedValue, type DataStep, type KindState, type Model, type ModelState, type StateOptions } from '../model';
import { AddFieldData, BuildUniqueMarkers, CopyFieldData, CopyModelData, DeleteModelData, RemoveFieldData, type Operation, type ScanOptions } from '../operations';
import type { WrittenOperation } from './writer';

/** What the models in code change against the recorded state, and the migration that follows. */
export interface DetectedChanges {
  /** The state the new migration records. */
  readonly state: ModelState;
  /** In the order to run them, kind by kind (sorted); some written commented out, for review. */
  readonly operations: WrittenOperation[];
  /** One line per change, in words: the migration's description and the command's report. */
  readonly changes: readonly string[];
  /** What the user must do by hand (a type change, a re-index, a computed default): the file's header. */
  readonly notes: readonly string[];
  /** The composite indexes differ from the recorded ones: index.yaml must be written again. */
  readonly indexesChanged: boolean;
  /** Words for the file name, Django's way: the first change, then `_and_more`. */
  readonly name: string;
}

const REMOVE_NOTE = [
  'Optional: unknown properties are kept on save and ignored on load, so the old data harms nothing.',
  'Removing it rewrites every entity that has it (a write each); worth it for large or indexed properties.',
];

/**
 * Django's autodetector: from the recorded state and the models in code, the state to record and the
 * operations the change needs. The choice of operations is `schemaChange` (src/model/schema-change.ts),
 * the engine the runtime model factory uses too; this turns its steps into operations a file can hold.
 * Undefined when nothing changed. Throws BAD_INPUT, writing nothing, on an ambiguous change
 * (stateOfModels), unless `noRename`.
 */
export function detectChanges(previous: ModelState | undefined, models: readonly Model[], options: StateOptions = {}): DetectedChanges | undefined {
  const { state, matched } = stateOfModels(models, previous, options);
  if (previous && canonicalJson(previous) === canonicalJson(state)) return undefined;
  const operations: WrittenOperation[] = [];
  const changes: string[] = [];
  const notes: string[] = [];
  const slugs: string[] = [];
  const byKind = new Map(models.map((m) => [m.kind, m]));

  for (const now of state.models) {
    const model = byKind.get(now.kind)!;
    const before = matched.get(now.kind);
    if (!before) {
      changes.push(`${now.kind}: new model, recorded as it is`);
      slugs.push(previous ? `${now.kind}` : 'initial');
      continue;
    }
    const scan: ScanOptions = model.namespace ? { namespace: model.namespace } : {};
    const change = schemaChange(shapeOf(before), shapeOf(now));
    for (const step of change.steps) {
      const made = dataStep(step, model, scan);
      changes.push(made.change);
      slugs.push(made.slug);
      if (made.operation) operations.push(made.operation);
      if (made.note) notes.push(made.note);
    }
    const written = new Set(change.steps.flatMap((step) => (step.type === 'AddFieldData' ? [step.fieldId] : [])));
    for (const field of change.diff.added.filter((f) => !written.has(f.id))) {
      changes.push(`${now.kind}.${field.name} added: nothing to write (${field.indexed ? 'no default to write' : 'unindexed, its default applies on load'})`);
      slugs.push(`${now.kind}_${field.name}`);
    }
    for (const step of change.markers) {
      operations.push({ operation: new BuildUniqueMarkers(step.kind, step.field, scan), comment: ['Fails, writing nothing, when entities already share a value: it lists them.'] });
      changes.push(`${step.kind}.${step.field} made unique: build the markers of the entities stored before`);
      slugs.push(`unique_${step.kind}_${step.field}`);
    }
    for (const step of change.completedRenames) {
      const field = now.fields.find((f) => f.id === step.fieldId)!;
      operations.push({ operation: new RemoveFieldData(step.kind, step.field, scan), comment: [`The rename to ${field.name} is complete: nothing reads or writes ${step.field} any more.`] });
      changes.push(`${step.kind}.${field.name}: rename from ${step.field} complete, remove the old property`);
      slugs.push(`remove_${step.kind}_${step.field}`);
    }
    for (const left of change.leftBehind) {
      if (left.type === 'kind') {
        operations.push({
          operation: new DeleteModelData(left.kind, scan),
          commentedOut: true,
          comment: [`${left.kind} was renamed to ${now.kind}; once no process reads it, its entities may go. Irreversible.`],
        });
      } else if (left.cause === 'removed') {
        operations.push({ operation: new RemoveFieldData(left.kind, left.property, scan), commentedOut: true, comment: [`${left.kind}.${left.property} was removed from the model.`, ...REMOVE_NOTE] });
        changes.push(`${left.kind}.${left.property} removed`);
        slugs.push(`remove_${left.kind}_${left.property}`);
      }
    }
    changes.push(...change.diff.changed.flatMap((c) => attributeChange(now.kind, c, now.fields.find((f) => f.id === c.id)!.unique)));
  }

  for (const gone of (previous?.models ?? []).filter((k) => ![...matched.values()].includes(k))) {
    operations.push({
      operation: new DeleteModelData(gone.kind),
      commentedOut: true,
      comment: [`The model of ${gone.kind} was removed; its entities stay until deleted. Irreversible: copy them first if they may be needed.`],
    });
    changes.push(`${gone.kind}: model removed`);
    slugs.push(`delete_${gone.kind}`);
  }

  const indexesChanged = indexesOf(previous) !== indexesOf(state);
  if (indexesChanged) {
    changes.push('composite indexes changed: index.yaml written again; deploy it with gcloud datastore indexes create index.yaml');
    slugs.push('indexes');
  }
  return { state, operations, changes, notes, indexesChanged, name: fileWords(slugs) };
}

interface MadeStep {
  change: string;
  slug: string;
  operation?: WrittenOperation;
  note?: string;
}

function dataStep(step: DataStep, model: Model, scan: ScanOptions): MadeStep {
  switch (step.type) {
    case 'CopyModelData':
      return {
        change: `${step.kind} renamed to ${step.toKind}: copy its entities`,
        slug: `rename_${step.kind}_${step.toKind}`,
        operation: { operation: new CopyModelData(step.kind, step.toKind, scan), comment: [`Entities already saved under ${step.toKind} are kept.`] },
      };
    case 'AddFieldData':
      return addField(step, model, scan);
    case 'CopyFieldData':
      return {
        change: `${step.kind}.${step.from} renamed to ${step.to}: copy the data`,
        slug: `rename_${step.kind}_${step.from}`,
        operation: {
          operation: new CopyFieldData(step.kind, step.from, step.to, scan),
          comment: [`Saves write both names until the model marks the rename complete (renamedFrom: { name: '${step.from}', complete: true }); then makemigrations removes ${step.from}.`],
        },
      };
    case 'ConvertField':
      return {
        change: `${step.kind}.${step.field} changed type from ${showType(step.from)} to ${showType(step.to)}`,
        slug: `retype_${step.kind}_${step.field}`,
        note: `${step.kind}.${step.field} changed type from ${showType(step.from)} to ${showType(step.to)}: stored values keep their old type until converted. Add a MapFunctionOnEntities that converts them to this migration's operations.`,
      };
    case 'Reindex':
      return {
        change: `${step.kind}.${step.field} now ${step.indexed ? 'indexed' : 'unindexed'}`,
        slug: `${step.indexed ? 'index' : 'unindex'}_${step.kind}_${step.field}`,
        note: `${step.kind}.${step.field} is now ${step.indexed ? 'indexed' : 'excluded from indexes'}: entities stored before keep the old setting until saved again. Add a MapFunctionOnEntities that sets it again to this migration's operations, if queries must see the change on old entities.`,
      };
  }
}

/** Writes the default as the model stores it (an integer as an integer, a double as a double), so that the data matches what saves write. */
function addField(step: Extract<DataStep, { type: 'AddFieldData' }>, model: Model, scan: ScanOptions): MadeStep {
  const spec = model.fields[step.field];
  const change = `${step.kind}.${step.field} added, indexed: write its default where missing so that queries find it`;
  const slug = `${step.kind}_${step.field}`;
  if (typeof spec.default === 'function') {
    return {
      change,
      slug,
      note: `${step.kind}.${step.field} is indexed and its default is a function, which a migration cannot hold: add new AddFieldData('${step.kind}', '${step.field}', { default: <value> }) to this migration's operations so that queries find entities stored before.`,
    };
  }
  const operation: Operation = new AddFieldData(step.kind, step.field, { ...scan, default: storedValue(spec, spec.default ?? null) });
  return { change, slug, operation: { operation } };
}

/** A field's changed attributes that no step above reports (a rename's progress, a re-index and a field made unique are). */
function attributeChange(kind: string, changed: { name: string; attributes: readonly string[] }, unique: boolean): string[] {
  const attributes = changed.attributes.filter((a) => a !== 'renamedFrom' && a !== 'indexed' && !(a === 'unique' && unique));
  return attributes.length > 0 ? [`${kind}.${changed.name}: ${attributes.join(', ')} changed`] : [];
}

function indexesOf(state: ModelState | undefined): string {
  return canonicalJson((state?.models ?? []).filter((k: KindState) => k.indexes.length > 0).map((k) => [k.kind, k.indexes]));
}

/** `person_colour`, `person_colour_and_more`: lower-case letters, digits and underscores, at most 60. */
function fileWords(slugs: readonly string[]): string {
  const first = (slugs[0] ?? 'state')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 50);
  return `${first || 'state'}${new Set(slugs).size > 1 ? '_and_more' : ''}`;
}
