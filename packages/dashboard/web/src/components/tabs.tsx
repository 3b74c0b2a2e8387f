import type { ComponentChildren } from "preact";

export interface Tab {
  id: string;
  label: string;
}

/** WAI-ARIA tabs: arrow keys move between them, the panel is labelled by its tab. */
export function Tabs({
  tabs,
  active,
  onSelect,
  children,
}: {
  tabs: readonly Tab[];
  active: string;
  onSelect: (id: string) => void;
  children: ComponentChildren;
}) {
  const onKey = (e: KeyboardEvent) => {
    const i = tabs.findIndex((t) => t.id === active);
    const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
    if (!step) return;
    e.preventDefault();
    const next = tabs[(i + step + tabs.length) % tabs.length];
    if (next) {
      onSelect(next.id);
      document.getElementById(`tab-${next.id}`)?.focus();
    }
  };
  return (
    <div class="tabs">
      <div role="tablist" class="tablist" onKeyDown={onKey}>
        {tabs.map((t) => (
          <button
            key={t.id}
            type="button"
            role="tab"
            id={`tab-${t.id}`}
            aria-selected={t.id === active}
            aria-controls={`panel-${t.id}`}
            tabIndex={t.id === active ? 0 : -1}
            onClick={() => onSelect(t.id)}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${active}`} aria-labelledby={`tab-${active}`} class="tabpanel">
        {children}
      </div>
    </div>
  );
}
