// jsdom has no DragEvent, which @lumino/dragdrop subclasses at import time
// (JupyterLab's own test setup, @jupyterlab/testing, fills the same gap).
if (typeof globalThis.DragEvent === 'undefined') {
  class DragEvent extends MouseEvent {
    readonly dataTransfer: DataTransfer | null = null;
  }
  (globalThis as Record<string, unknown>).DragEvent = DragEvent;
}

// jsdom has no matchMedia, which the toolkit's web components read at import time.
if (typeof window.matchMedia !== 'function') {
  window.matchMedia = (query: string): MediaQueryList =>
    ({
      matches: false,
      media: query,
      onchange: null,
      addListener: () => undefined,
      removeListener: () => undefined,
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
      dispatchEvent: () => false
    }) as MediaQueryList;
}
