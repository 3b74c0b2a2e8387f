import type { SystemHelper } from "../system/system-helper.js";

/** User-defined file metadata: stored as `user.e2b.<key>` extended attributes on the file. */
export type FileMetadata = Record<string, string>;

/** Paths per helper request, so one answer line stays small even for a huge listing. */
const PATHS_PER_REQUEST = 256;

function hex(text: string | Buffer): string {
  return (typeof text === "string" ? Buffer.from(text, "utf8") : text).toString("hex");
}

function parseAttrs(field: string): FileMetadata | undefined {
  if (field === "-" || field === "") return undefined;
  const metadata: FileMetadata = {};
  for (const pair of field.split(",")) {
    const [key = "", value = ""] = pair.split("=", 2);
    metadata[Buffer.from(key, "hex").toString("utf8")] = Buffer.from(value, "hex").toString("utf8");
  }
  return metadata;
}

/**
 * Reads and replaces file metadata through the resident system helper (Node has no xattr
 * API). The helper lists a file's attributes before reading any, so files without
 * metadata (nearly all) cost one listxattr each, batched many paths per pipe round trip.
 */
export class FileMetadataStore {
  constructor(private readonly helper: SystemHelper) {}

  /** Metadata of each path, in order; undefined where it has none or cannot be read. */
  async read(paths: ReadonlyArray<string | Buffer>): Promise<Array<FileMetadata | undefined>> {
    const out: Array<FileMetadata | undefined> = [];
    for (let i = 0; i < paths.length; i += PATHS_PER_REQUEST) {
      const batch = paths.slice(i, i + PATHS_PER_REQUEST);
      const answer = await this.helper.call(`xattr-get ${batch.map(hex).join(" ")}`);
      const fields = answer.split(" ");
      for (let j = 0; j < batch.length; j++) out.push(parseAttrs(fields[j] ?? "-"));
    }
    return out;
  }

  /** Metadata of one path (undefined when none). */
  async readOne(path: string | Buffer): Promise<FileMetadata | undefined> {
    return (await this.read([path]))[0];
  }

  /** Makes `metadata` the path's whole metadata: keys not in it are removed; {} clears all. */
  async replace(path: string | Buffer, metadata: FileMetadata): Promise<void> {
    const pairs = Object.entries(metadata).map(([k, v]) => `${hex(k)}=${hex(v)}`);
    await this.helper.call(["xattr-set", hex(path), ...pairs].join(" "));
  }
}
