/** A file browser over the guest: list, open folders, upload, download, new folder, delete. */
import type { EntryView } from "@wrenn/api";
import { useState } from "preact/hooks";
import { api, apiUrl, seg, send } from "../../api/client.js";
import { useAction, useApi } from "../../api/use-api.js";
import { type Column, DataTable } from "../../components/data-table.js";
import { ErrorNote } from "../../components/error-note.js";
import { formatBytes, formatTime } from "../../format.js";
import { DeleteEntryDialog, NewFolderDialog } from "./files-dialogs.js";
import { HOME, join, normalize, parent } from "./paths.js";

const ORDER: Record<string, number> = { directory: 0, symlink: 1, file: 2, unknown: 3 };

const sorted = (items: EntryView[]) =>
  [...items].sort((a, b) => (ORDER[a.type] ?? 9) - (ORDER[b.type] ?? 9) || a.name.localeCompare(b.name));

export function FilesTab({ sandboxId }: { sandboxId: string }) {
  const base = `/v1/sandboxes/${seg(sandboxId)}/files`;
  const [dir, setDir] = useState(HOME);
  const [typed, setTyped] = useState(HOME);
  const [deleting, setDeleting] = useState<EntryView | null>(null);
  const [making, setMaking] = useState(false);
  const list = useApi(
    (signal) =>
      api<{ items: EntryView[] }>("GET", `${base}/list`, { query: { path: dir }, signal }).then((r) =>
        sorted(r.items),
      ),
    [base, dir],
  );
  const go = (path: string) => {
    const next = normalize(path);
    setDir(next);
    setTyped(next);
  };
  const upload = useAction(async (files: File[]) => {
    for (const file of files) await send("PUT", base, { query: { path: join(dir, file.name) }, body: file });
    list.reload();
  });

  const columns: Column<EntryView>[] = [
    {
      label: "Name",
      render: (e) =>
        e.type === "directory" ? (
          <button type="button" class="link" onClick={() => go(e.path)}>
            {e.name}
            <span aria-hidden="true">/</span>
          </button>
        ) : (
          <span class="mono">{e.name}</span>
        ),
    },
    { label: "Type", render: (e) => e.type, wide: true },
    { label: "Size", render: (e) => (e.type === "file" ? formatBytes(e.size) : "–"), numeric: true },
    { label: "Modified", render: (e) => formatTime(e.modified_at), wide: true },
    {
      label: "Actions",
      render: (e) => (
        <div class="row-actions">
          {e.type !== "directory" && (
            <a class="button" download={e.name} href={apiUrl(base, { path: e.path })}>
              Download
            </a>
          )}
          <button type="button" class="danger" onClick={() => setDeleting(e)}>
            Delete
          </button>
        </div>
      ),
    },
  ];

  return (
    <div>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          go(typed);
        }}
      >
        <label class="path-field">
          <span class="visually-hidden">Path</span>
          <input
            type="text"
            aria-label="Path"
            class="mono"
            value={typed}
            onInput={(e) => setTyped(e.currentTarget.value)}
          />
        </label>
        <button type="button" onClick={() => go(parent(dir))} disabled={dir === "/"}>
          Up
        </button>
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
        <button type="button" onClick={() => setMaking(true)}>
          New folder
        </button>
        <label class="button">
          {upload.busy ? "Uploading…" : "Upload files"}
          <input
            type="file"
            multiple
            aria-label="Upload files"
            class="visually-hidden"
            disabled={upload.busy}
            onChange={(e) => {
              const input = e.currentTarget;
              const files = [...(input.files ?? [])];
              input.value = "";
              if (files.length) upload.run(files);
            }}
          />
        </label>
      </form>
      <ErrorNote error={upload.error} onDismiss={upload.clear} />
      <ErrorNote error={list.error} />
      {list.data && !list.error ? (
        <DataTable
          rows={list.data}
          columns={columns}
          rowKey={(e) => e.path}
          caption={`Files in ${dir}`}
          empty="This folder is empty."
        />
      ) : (
        list.loading && <p class="loading">Loading {dir}…</p>
      )}
      <NewFolderDialog
        open={making}
        onClose={() => setMaking(false)}
        onCreate={async (name) => {
          await api("POST", `${base}/mkdir`, { body: { path: join(dir, name) } });
          list.reload();
        }}
      />
      <DeleteEntryDialog
        entry={deleting}
        onClose={() => setDeleting(null)}
        onDelete={async (entry) => {
          await send("DELETE", base, { query: { path: entry.path } });
          list.reload();
        }}
      />
    </div>
  );
}
