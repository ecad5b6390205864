/**
 * Request ordering for a pipelining client. Requests may run at the same time and answer out
 * of order, but the result must be as if they ran one by one in arrival order for requests
 * about the same file: reads and writes through one handle run in parallel unless their byte
 * ranges overlap and one of them writes; everything else on a handle (close, fstat, readdir…)
 * waits for what came before on it and holds back what comes after; path requests (open,
 * stat, rename, …) run alone, after everything received before them.
 *
 * @see draft-ietf-secsh-filexfer-02 §6.1
 * @internal
 * @module
 */

/** What a request touches. */
export type Scope =
  | { kind: 'global' }
  | { kind: 'handle'; handle: number; barrier: true }
  | { kind: 'handle'; handle: number; barrier: false; start: number; end: number; write: boolean };

interface Entry {
  scope: Scope;
  done: Promise<void>;
}

function conflicts(a: Scope, b: Scope): boolean {
  if (a.kind === 'global' || b.kind === 'global') return true;
  if (a.handle !== b.handle) return false;
  if (a.barrier || b.barrier) return true;
  return (a.write || b.write) && a.start < b.end && b.start < a.end;
}

export class Scheduler {
  private readonly active: Entry[] = [];
  private idleWaiters: Array<() => void> = [];

  /** @param settled - called after each request finished and left the scheduler. */
  constructor(private readonly settled: () => void = () => undefined) {}

  /** Requests started or waiting. */
  get size(): number {
    return this.active.length;
  }

  /**
   * Runs `fn` once every earlier request it conflicts with has finished (at once when none
   * does). `fn` must not reject.
   */
  run(scope: Scope, fn: () => Promise<void>): void {
    const deps: Promise<void>[] = [];
    for (const e of this.active) if (conflicts(scope, e.scope)) deps.push(e.done);
    const done = (deps.length === 0 ? fn() : Promise.all(deps).then(fn)).then(() => {
      const i = this.active.indexOf(entry);
      if (i >= 0) this.active.splice(i, 1);
      if (this.active.length === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
      this.settled();
    });
    const entry: Entry = { scope, done };
    this.active.push(entry);
  }

  /** Resolves when no request is running or waiting. */
  idle(): Promise<void> {
    if (this.active.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
