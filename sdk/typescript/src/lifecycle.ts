/**
 * Hooks into the host's lifecycle so buffered events are not lost when it goes away:
 * Node flushes when the event loop empties (`beforeExit`; the flush timer itself is unref'd and
 * never keeps the process alive), browsers flush with `keepalive` when the page is hidden or
 * unloaded (`visibilitychange` to hidden, `pagehide`).
 */

export interface LifecycleHandlers {
  /** Node: the event loop has nothing left to do; anything scheduled here keeps it alive. */
  onIdleExit(): void;
  /** Browser: the page may be discarded without further notice. */
  onPageHidden(): void;
}

interface NodeProcess {
  versions?: { node?: string };
  on(event: 'beforeExit', listener: () => void): unknown;
  off(event: 'beforeExit', listener: () => void): unknown;
}

interface EventSource {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

interface BrowserGlobals {
  process?: NodeProcess;
  document?: EventSource & { visibilityState?: string };
  window?: EventSource;
}

/** Attaches the handlers that apply to this host; returns the function that detaches them. */
export function attachLifecycle(handlers: LifecycleHandlers): () => void {
  const host = globalThis as unknown as BrowserGlobals;
  const detachers: Array<() => void> = [];
  const proc = host.process;
  if (proc?.versions?.node !== undefined && typeof proc.on === 'function') {
    const onBeforeExit = (): void => handlers.onIdleExit();
    proc.on('beforeExit', onBeforeExit);
    detachers.push(() => proc.off('beforeExit', onBeforeExit));
  }
  const doc = host.document;
  const win = host.window;
  if (doc !== undefined && typeof doc.addEventListener === 'function') {
    const onVisibilityChange = (): void => {
      if (doc.visibilityState === 'hidden') handlers.onPageHidden();
    };
    doc.addEventListener('visibilitychange', onVisibilityChange);
    detachers.push(() => doc.removeEventListener('visibilitychange', onVisibilityChange));
  }
  if (win !== undefined && typeof win.addEventListener === 'function') {
    const onPageHide = (): void => handlers.onPageHidden();
    win.addEventListener('pagehide', onPageHide);
    detachers.push(() => win.removeEventListener('pagehide', onPageHide));
  }
  return () => {
    for (const detach of detachers) detach();
  };
}
