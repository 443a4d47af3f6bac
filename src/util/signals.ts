/** OS signals as an AbortSignal: the one place a command turns SIGINT/SIGTERM into a stop. */

export interface SignalStop {
  /** Aborts on the first of the signals, with that signal's name as reason ("SIGINT"). */
  signal: AbortSignal;
  /** Removes the listeners. */
  dispose: () => void;
}

export function stopOnSignals(signals: readonly Deno.Signal[]): SignalStop {
  const controller = new AbortController();
  const handlers: [Deno.Signal, () => void][] = signals.map((s) => [s, () => controller.abort(s)]);
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
    },
  };
}
