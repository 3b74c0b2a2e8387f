/**
 * What `@wrenn/sdk` resolves to under Node (the `node` export condition): the same API as
 * the browser-safe `index.ts`, with the credentials file that `wrenn up` writes as the last
 * source of the API URL and key, and template copy steps packed from local files (system
 * tar). A re-export of the whole entry (`export *`) on purpose: two hand-kept export lists
 * would drift.
 */
import { setDefaultConfigFallback } from "./config.js";
import { packCopySource } from "./copy-archive.js";
import { credentialsFallback } from "./node.js";
import { setDefaultCopyPacker } from "./templates.js";

setDefaultConfigFallback(credentialsFallback());
setDefaultCopyPacker(packCopySource);

export * from "./index.js";
