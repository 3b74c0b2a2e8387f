/** A sandbox's or build's state as a coloured word (the word carries the meaning, not the colour). */
export function StateBadge({ state }: { state: string }) {
  return (
    <span class={`badge state-${state}`} data-state={state}>
      {state}
    </span>
  );
}
