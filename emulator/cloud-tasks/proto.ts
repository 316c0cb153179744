import path from 'node:path';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';

/**
 * The CloudTasks service definition, loaded from the very protos @google-cloud/tasks ships, so
 * the emulator and the client cannot disagree about the API. google/api, google/rpc and
 * google/iam come from google-gax's copy. The field options here are what wire.ts describes.
 */
let cached: ServiceDefinition | undefined;

export function cloudTasksService(): ServiceDefinition {
  if (cached) return cached;
  // Both packages restrict deep imports through "exports", so their protos are found from their entry points.
  const tasksProtos = path.dirname(require.resolve('@google-cloud/tasks/build/protos'));
  const gaxProtos = path.join(path.dirname(require.resolve('google-gax')), '..', '..', 'build', 'protos');
  const definition: PackageDefinition = loadSync('google/cloud/tasks/v2/cloudtasks.proto', {
    includeDirs: [tasksProtos, gaxProtos],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  });
  const service = definition['google.cloud.tasks.v2.CloudTasks'];
  if (!service || !('CreateTask' in service)) throw new Error('google.cloud.tasks.v2.CloudTasks is missing from the protos');
  cached = service as ServiceDefinition;
  return cached;
}
