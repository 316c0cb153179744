import type { HttpMethodName } from './wire';

/** An HTTP request as the emulator sends it to a task's target. */
export interface OutgoingRequest {
  method: HttpMethodName;
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}
