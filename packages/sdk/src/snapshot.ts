import type { SnapshotCreateBody, SnapshotDeleteQuery, TemplateView } from "@wrenn/api";
import { ApiClient, apiPath } from "./api-client.js";
import { type SnapshotInfo, snapshotInfoFromWire } from "./api-types.js";
import { type ClientOptions, Sandbox } from "./sandbox.js";

async function createSnapshot(
  sandbox: Sandbox | string,
  name: string,
  options: ClientOptions = {},
): Promise<SnapshotInfo> {
  const api =
    options.client ?? (sandbox instanceof Sandbox ? sandbox.client : await ApiClient.create(options));
  const sandboxId = sandbox instanceof Sandbox ? sandbox.sandboxId : sandbox;
  return snapshotInfoFromWire(
    await api.json<TemplateView>("POST", "/v1/snapshots", {
      json: { sandbox_id: sandboxId, name } satisfies SnapshotCreateBody,
    }),
  );
}

async function listSnapshots(options: ClientOptions = {}): Promise<SnapshotInfo[]> {
  const api = options.client ?? (await ApiClient.create(options));
  return (await api.json<{ items: TemplateView[] }>("GET", "/v1/snapshots")).items.map(snapshotInfoFromWire);
}

async function getSnapshot(name: string, options: ClientOptions = {}): Promise<SnapshotInfo> {
  const api = options.client ?? (await ApiClient.create(options));
  return snapshotInfoFromWire(await api.json<TemplateView>("GET", apiPath("snapshots", name)));
}

async function deleteSnapshot(
  name: string,
  options: ClientOptions & { force?: boolean } = {},
): Promise<void> {
  const api = options.client ?? (await ApiClient.create(options));
  await api.json("DELETE", apiPath("snapshots", name), {
    query: { force: options.force ? "true" : undefined } satisfies SnapshotDeleteQuery,
  });
}

/**
 * Named snapshots: a running or paused sandbox frozen into a template that new sandboxes
 * start from (`Sandbox.create({ snapshot: name })`). The source sandbox keeps its state.
 */
export const Snapshot = {
  create: createSnapshot,
  list: listSnapshots,
  get: getSnapshot,
  /** Deletes a snapshot; `force` deletes it even while sandboxes created from it exist. */
  delete: deleteSnapshot,
} as const;
