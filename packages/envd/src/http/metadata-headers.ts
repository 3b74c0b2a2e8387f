import type { IncomingMessage } from "node:http";
import type { FileMetadata } from "../filesystem/file-metadata.js";
import { HttpError } from "./http-route.js";

const HEADER_PREFIX = "x-metadata-";
/** The xattr namespace each key is stored under; counted in the size limits below. */
const XATTR_PREFIX_BYTES = "user.e2b.".length;
/** Linux caps an xattr name at 255 bytes, namespace included. */
const MAX_KEY_BYTES = 255 - XATTR_PREFIX_BYTES;
/** All of a file's metadata (prefixed keys plus values), within one ext4 inode's xattr budget. */
const MAX_TOTAL_BYTES = 4096;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * The metadata an upload carries as `X-Metadata-<key>: <value>` headers, as E2B's envd
 * reads them: the key is the rest of the header name, lowercased (Node lowercases header
 * names); a header sent twice keeps its first value; keys and values must be printable
 * US-ASCII within the size limits, or the upload is refused with 400.
 */
export function parseMetadataHeaders(req: IncomingMessage): FileMetadata {
  const metadata: FileMetadata = {};
  let total = 0;
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (!name.startsWith(HEADER_PREFIX) || values === undefined) continue;
    const key = name.slice(HEADER_PREFIX.length);
    const value = values[0] ?? "";
    if (key === "") throw new HttpError(400, "metadata key must not be empty");
    if (!PRINTABLE_ASCII.test(key) || !PRINTABLE_ASCII.test(value))
      throw new HttpError(
        400,
        `metadata key ${JSON.stringify(key)}: keys and values must be printable US-ASCII`,
      );
    if (key.length > MAX_KEY_BYTES)
      throw new HttpError(400, `metadata key ${JSON.stringify(key)} is longer than ${MAX_KEY_BYTES} bytes`);
    total += XATTR_PREFIX_BYTES + key.length + value.length;
    if (total > MAX_TOTAL_BYTES)
      throw new HttpError(400, `file metadata is larger than ${MAX_TOTAL_BYTES} bytes in total`);
    metadata[key] = value;
  }
  return metadata;
}
