import type { VolumeCreateBody, VolumeView, VolumeWithTokenView } from "@wrenn/api";
import { ApiClient, apiPath } from "./api-client.js";
import type { ClientOptions } from "./sandbox.js";
import { VolumeContent } from "./volume-content.js";

/** A named persistent volume of the team, as the API reports it. */
export interface VolumeInfo {
  volumeId: string;
  name: string;
  /** The host that keeps its files (sandboxes that mount it run there). */
  hostId: string;
  sizeMiB: number;
  createdAt: Date;
}

function volumeInfoFromWire(w: VolumeView): VolumeInfo {
  return {
    volumeId: w.id,
    name: w.name,
    hostId: w.host_id,
    sizeMiB: w.size_mib,
    createdAt: new Date(w.created_at),
  };
}

/**
 * One volume and its files (`readFile`, `writeFile`, `list`, `makeDir`, `stat`, `exists`,
 * `updateMetadata`, `remove`: see `VolumeContent`), reached with the volume's content token
 * rather than the API key. Mount it into sandboxes with `Sandbox.create({ volumeMounts })`.
 */
export class Volume extends VolumeContent {
  readonly volumeId: string;
  readonly name: string;
  readonly info: VolumeInfo;
  /** The bearer token of this volume's content API: whoever holds it can read and write its files. */
  readonly token: string;

  /** Wraps a volume the API reported (with its token); does no I/O. */
  constructor(api: Pick<ApiClient, "apiUrl" | "timeoutMs">, wire: VolumeWithTokenView) {
    super({ apiUrl: api.apiUrl, volumeId: wire.id, token: wire.content_token, timeoutMs: api.timeoutMs });
    this.info = volumeInfoFromWire(wire);
    this.volumeId = wire.id;
    this.name = wire.name;
    this.token = wire.content_token;
  }
}

async function clientFrom(options: ClientOptions): Promise<ApiClient> {
  return options.client ?? ApiClient.create(options);
}

/** Creates a volume (`sizeMiB`: the server's default when unset) on a host chosen like a sandbox's. */
async function create(
  spec: { name: string; sizeMiB?: number },
  options: ClientOptions = {},
): Promise<Volume> {
  const api = await clientFrom(options);
  const wire = await api.json<VolumeWithTokenView>("POST", "/v1/volumes", {
    json: { name: spec.name, size_mib: spec.sizeMiB } satisfies VolumeCreateBody,
  });
  return new Volume(api, wire);
}

/** The team's volumes, oldest first (without their tokens: `get` one to use its files). */
async function list(options: ClientOptions = {}): Promise<VolumeInfo[]> {
  const api = await clientFrom(options);
  return (await api.json<{ items: VolumeView[] }>("GET", "/v1/volumes")).items.map(volumeInfoFromWire);
}

/** A volume by name or id, ready for its content operations. */
async function get(nameOrId: string, options: ClientOptions = {}): Promise<Volume> {
  const api = await clientFrom(options);
  return new Volume(api, await api.json<VolumeWithTokenView>("GET", apiPath("volumes", nameOrId)));
}

/** Deletes a volume and its files; refused (`conflict`) while a sandbox mounts it. */
async function deleteVolume(nameOrId: string, options: ClientOptions = {}): Promise<void> {
  const api = await clientFrom(options);
  await api.json("DELETE", apiPath("volumes", nameOrId));
}

/** Named persistent volumes of the team: they outlive the sandboxes that mount them. */
export const Volumes = {
  create,
  list,
  get,
  delete: deleteVolume,
} as const;
