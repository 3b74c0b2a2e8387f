import type { ComponentChildren } from "preact";

export interface Column<T> {
  label: string;
  render: (row: T) => ComponentChildren;
  /** Hidden on narrow screens. */
  wide?: boolean;
  numeric?: boolean;
}

/** A table that becomes stacked cards on phone widths (each cell labelled by its column). */
export function DataTable<T>({
  rows,
  columns,
  rowKey,
  empty,
  caption,
}: {
  rows: readonly T[];
  columns: readonly Column<T>[];
  rowKey: (row: T) => string;
  empty: string;
  caption: string;
}) {
  if (rows.length === 0) return <p class="empty">{empty}</p>;
  return (
    <div class="table-wrap">
      <table class="data-table">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.label} scope="col" class={`${c.wide ? "wide" : ""} ${c.numeric ? "num" : ""}`}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)} data-row={rowKey(row)}>
              {columns.map((c) => (
                <td
                  key={c.label}
                  data-label={c.label}
                  class={`${c.wide ? "wide" : ""} ${c.numeric ? "num" : ""}`}
                >
                  {c.render(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
