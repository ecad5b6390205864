/**
 * An AbortSignal made only when someone asks for it. Most connections and sessions never
 * look at their signal, and an AbortController plus the Error that explains the abort cost
 * time and memory on every one of them; this makes both lazy, with the same behaviour.
 *
 * @internal
 * @module
 */
export class LazySignal {
  private controller: AbortController | undefined;
  private reason: (() => unknown) | undefined;
  private done = false;

  /** The signal; already aborted (with the reason) when the abort came first. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason) this.controller.abort(this.reason());
      this.reason = undefined;
    }
    return this.controller.signal;
  }

  /** Whether `abort` was called. */
  get aborted(): boolean {
    return this.done;
  }

  /** Aborts once; `reason` is called only if the signal exists now or is asked for later. */
  abort(reason: () => unknown): void {
    if (this.done) return;
    this.done = true;
    if (this.controller) this.controller.abort(reason());
    else this.reason = reason;
  }
}
