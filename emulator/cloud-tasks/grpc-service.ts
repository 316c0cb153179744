import { status, type handleUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { ApiError } from './errors';
import type { QueueApi } from './queue-api';
import type { TaskApi } from './task-api';

/** Adapts a synchronous API method to a gRPC handler: ApiError becomes its status, anything else INTERNAL. */
function unary<Req, Res>(method: (request: Req) => Res, onError: (error: unknown) => void): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    try {
      callback(null, method(call.request));
    } catch (error) {
      if (error instanceof ApiError) return callback({ code: error.code, details: error.message });
      onError(error);
      callback({ code: status.INTERNAL, details: `Cloud Tasks emulator bug: ${error instanceof Error ? error.message : String(error)}` });
    }
  };
}

const unsupported =
  (method: string): handleUnaryCall<unknown, unknown> =>
  (_call, callback) =>
    callback({ code: status.UNIMPLEMENTED, details: `${method} is not supported by the Cloud Tasks emulator` });

export function cloudTasksImplementation(queues: QueueApi, tasks: TaskApi, onError: (error: unknown) => void): UntypedServiceImplementation {
  return {
    ListQueues: unary(queues.listQueues.bind(queues), onError),
    GetQueue: unary(queues.getQueue.bind(queues), onError),
    CreateQueue: unary(queues.createQueue.bind(queues), onError),
    UpdateQueue: unary(queues.updateQueue.bind(queues), onError),
    DeleteQueue: unary(queues.deleteQueue.bind(queues), onError),
    PurgeQueue: unary(queues.purgeQueue.bind(queues), onError),
    PauseQueue: unary(queues.pauseQueue.bind(queues), onError),
    ResumeQueue: unary(queues.resumeQueue.bind(queues), onError),
    ListTasks: unary(tasks.listTasks.bind(tasks), onError),
    GetTask: unary(tasks.getTask.bind(tasks), onError),
    CreateTask: unary(tasks.createTask.bind(tasks), onError),
    DeleteTask: unary(tasks.deleteTask.bind(tasks), onError),
    RunTask: unary(tasks.runTask.bind(tasks), onError),
    GetIamPolicy: unsupported('GetIamPolicy'),
    SetIamPolicy: unsupported('SetIamPolicy'),
    TestIamPermissions: unsupported('TestIamPermissions'),
  };
}
