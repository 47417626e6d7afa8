/** Small Preact hooks: load data from the API with loading and error state, and reload on demand. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export type Loaded<T> = { state: 'loading' } | { state: 'error'; error: unknown } | { state: 'ready'; data: T };

/**
 * Runs `load` when `deps` change (showing the loading state) and on `reload()` (keeping what is
 * shown until the new answer arrives, so a live refresh does not flicker). Stale answers are dropped.
 */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): [Loaded<T>, () => void] {
  const [result, setResult] = useState<Loaded<T>>({ state: 'loading' });
  const [generation, setGeneration] = useState(0);
  const loadedGeneration = useRef(0);
  useEffect(() => {
    let current = true;
    const isReload = generation !== loadedGeneration.current;
    loadedGeneration.current = generation;
    setResult((previous) => (isReload && previous.state === 'ready' ? previous : { state: 'loading' }));
    load().then(
      (data) => current && setResult({ state: 'ready', data }),
      (error: unknown) => current && setResult({ state: 'error', error }),
    );
    return () => {
      current = false;
    };
  }, [...deps, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return [result, reload];
}
