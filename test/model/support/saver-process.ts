import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { SaveOutcome } from './unique-saver';

const SAVER = path.join(__dirname, 'unique-saver.ts');

/** The parent's end of a unique-saver child: started and connected, waiting for go(). */
export class SaverProcess {
  private stderr = '';
  private readonly outcome: Promise<SaveOutcome[]>;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    ready: () => void,
    failed: (error: Error) => void,
  ) {
    child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.outcome = new Promise((resolve, reject) => {
      const exit = (code: number | null) => {
        const error = new Error(`unique saver exited with ${code} before answering: ${this.stderr}`);
        failed(error);
        reject(error);
      };
      // 'close', not 'exit': a child that wrote its answer and exited may be reported exited before its
      // last stdout line was read; 'close' comes once its output is all in.
      child.once('close', exit);
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line === 'ready') return ready();
        child.off('close', exit);
        resolve(JSON.parse(line) as SaveOutcome[]);
      });
    });
    this.outcome.catch(() => undefined);
  }

  static start(env: NodeJS.ProcessEnv, namespace: string, saves: readonly { id: string; email: string }[]): Promise<SaverProcess> {
    const child = spawn(process.execPath, ['-r', 'tsx/cjs', SAVER, namespace, JSON.stringify(saves)], { env, cwd: path.join(__dirname, '../../..') });
    return new Promise((resolve, reject) => {
      const saver: SaverProcess = new SaverProcess(child, () => resolve(saver), reject);
    });
  }

  /** Starts the saves; resolves with their outcomes. */
  go(): Promise<SaveOutcome[]> {
    this.child.stdin.write('go\n');
    return this.outcome;
  }
}
